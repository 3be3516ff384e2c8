import { describe, expect, test } from "bun:test";
import { osc52, pickClipboard } from "../src/clipboard.ts";

const having = (...cmds: string[]) => (c: string) => cmds.includes(c);

describe("pickClipboard", () => {
  test("macOS uses pbcopy", () => {
    expect(pickClipboard({ platform: "darwin", env: {}, has: having("pbcopy") })?.cmd).toBe("pbcopy");
  });

  test("Windows uses clip.exe", () => {
    expect(pickClipboard({ platform: "win32", env: {}, has: having() })?.cmd).toBe("clip.exe");
  });

  test("Wayland prefers wl-copy", () => {
    const env = { WAYLAND_DISPLAY: "wayland-0", DISPLAY: ":0" };
    expect(pickClipboard({ platform: "linux", env, has: having("wl-copy", "xclip") })?.cmd).toBe("wl-copy");
  });

  test("X11 uses xclip on the clipboard selection, then xsel", () => {
    const env = { DISPLAY: ":0" };
    expect(pickClipboard({ platform: "linux", env, has: having("xclip", "xsel") })).toEqual({
      cmd: "xclip",
      args: ["-selection", "clipboard"],
    });
    expect(pickClipboard({ platform: "linux", env, has: having("xsel") })).toEqual({
      cmd: "xsel",
      args: ["--clipboard", "--input"],
    });
  });

  test("a display server without its tool falls through", () => {
    const env = { WAYLAND_DISPLAY: "wayland-0" };
    expect(pickClipboard({ platform: "linux", env, has: having("xclip") })).toBeUndefined();
  });

  test("WSL reaches the Windows clipboard through clip.exe", () => {
    expect(pickClipboard({ platform: "linux", env: {}, has: having("clip.exe") })?.cmd).toBe("clip.exe");
  });

  test("a bare ssh session has no program: OSC 52 is left", () => {
    expect(pickClipboard({ platform: "linux", env: {}, has: having() })).toBeUndefined();
  });
});

describe("osc52", () => {
  const link = "http://127.0.0.1:8080/share/abcdefgh";
  const b64 = Buffer.from(link).toString("base64");

  test("plain terminals get the bare sequence", () => {
    expect(osc52(link, {})).toBe(`\x1b]52;c;${b64}\x07`);
  });

  test("tmux gets it wrapped in a passthrough", () => {
    expect(osc52(link, { TMUX: "/tmp/tmux" })).toBe(`\x1bPtmux;\x1b\x1b]52;c;${b64}\x07\x1b\\`);
  });

  test("screen gets a DCS wrapper", () => {
    expect(osc52(link, { STY: "1.pts" })).toBe(`\x1bP\x1b]52;c;${b64}\x07\x1b\\`);
  });
});
