// Entry of the TUI plugin bundle (`bundle/bshare-tui.js`): only the `{ id, tui }` default export.

export { default } from "./tui.js";
