// Entry of the server plugin bundle (`bundle/bshare.js`). Its one export is the plugin function:
// OpenCode calls every export of a file plugin, so nothing else may be exported from here.

export { BsharePlugin } from "./server.js";
