// Entry of the TUI plugin bundle (`dist/bshare-tui.js`): only the `{ id, tui }` default export.

export { default } from "./tui.js";
