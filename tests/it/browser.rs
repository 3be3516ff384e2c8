//! The share page in a real browser: headless Chromium at desktop and phone widths, light and dark,
//! driven over the DevTools protocol (`browser.ts`, run with Bun): the colours the reader sees are
//! the stylesheet's for each scheme, the phone layout has no horizontal overflow, and the page
//! makes no request to another host.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::support::{Env, Stores, read_data, share_document};

fn bun() -> String {
    std::env::var("BSHARE_TEST_BUN").unwrap_or_else(|_| {
        panic!(
            "BSHARE_TEST_BUN is not set. Run the tests with `scripts/test`, which installs Bun from \
             the npm registry, or point it at a Bun binary."
        )
    })
}

/// Load `url` in every viewport and scheme; what `browser.ts` reports.
fn in_chromium(url: &str) -> Value {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/browser.ts");
    let out = std::process::Command::new(bun())
        .args([script, &chromium, url])
        .output()
        .expect("cannot run Bun for the page tests");
    assert!(
        out.status.success(),
        "browser.ts failed (chromium is needed: Debian apt-get install chromium):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "browser.ts printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The custom properties (`--name: value;`) of the first `:root { ... }` in `css`.
fn root_vars(css: &str) -> HashMap<String, String> {
    let start = css.find(":root {").expect(":root") + ":root {".len();
    let body = &css[start..start + css[start..].find('}').expect("end of :root")];
    body.split(';')
        .filter_map(|decl| decl.trim().split_once(':'))
        .filter(|(name, _)| name.starts_with("--"))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// `#rrggbb` as a browser reports a computed colour.
fn rgb(hex: &str) -> String {
    let h = hex.strip_prefix('#').expect("a #rrggbb colour");
    let c = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).expect("hex");
    format!("rgb({}, {}, {})", c(0), c(2), c(4))
}

#[test]
fn page_in_chromium_has_the_stylesheets_colours_fits_a_phone_and_loads_nothing_from_elsewhere() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    // The long fixture, with a link and an image on another host in the first prompt.
    let mut doc: Value =
        serde_json::from_slice(&read_data("opencode-1.18.33-long.sharedata.json")).unwrap();
    let first = &mut doc["messages"][0]["parts"][0];
    first["text"] = json!(format!(
        "{} See ![the chart](https://tracker.example/chart.png) and [the docs](https://docs.example/x).",
        first["text"].as_str().unwrap()
    ));
    let created = share_document(&server, &serde_json::to_vec(&doc).unwrap());
    let url = server.url(&format!("/share/{}", created["shareId"].as_str().unwrap()));

    let report = in_chromium(&url);

    // Every request the page made went to this server: the page and its stylesheet, nothing else
    // (not the image on tracker.example).
    let requests: Vec<&str> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(requests.contains(&url.as_str()), "{requests:?}");
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&server.url("/assets/"))),
        "the stylesheet was fetched: {requests:?}"
    );
    for r in &requests {
        assert!(
            r.starts_with(&format!("{}/", server.base)),
            "a request left for another host: {r} (all: {requests:?})"
        );
    }

    // The colours the reader sees are the stylesheet's, for each scheme.
    let css = bshare::render::STYLESHEET;
    let light = root_vars(css);
    let dark_at = css
        .find("@media (prefers-color-scheme: dark)")
        .expect("a dark palette");
    let dark = root_vars(&css[dark_at..]);
    let expected = |vars: &HashMap<String, String>| -> Vec<(&'static str, String)> {
        [
            ("body background-color", "--bg"),
            ("body color", "--fg"),
            (".toc a color", "--accent"),
            (".msg.user background-color", "--user-bg"),
            ("pre.code background-color", "--code-bg"),
        ]
        .into_iter()
        .map(|(what, var)| (what, rgb(&vars[var])))
        .collect()
    };
    let views = report["views"].as_array().unwrap();
    assert_eq!(views.len(), 4);
    for view in views {
        let name = format!("{}-{}", view["name"], view["scheme"]);
        let html = view["html"].as_str().unwrap();
        assert!(html.contains("Add multiply, tests and CLI"), "{name}");
        assert!(
            html.contains("[long-2]"),
            "{name}: the last prompt is on the page"
        );
        // No script but the page's own live-follow script from this server.
        assert_eq!(
            html.to_ascii_lowercase().matches("<script").count(),
            1,
            "{name}: one script tag"
        );
        assert!(
            html.contains(&format!(
                "<script src=\"{}\" defer=\"\"></script>",
                bshare::render::live_script_path()
            )),
            "{name}"
        );
        assert!(!html.contains("<img"), "{name}: the remote image is a link");

        let palette = if view["scheme"] == "dark" {
            &dark
        } else {
            &light
        };
        for (what, colour) in expected(palette) {
            assert_eq!(
                view["colors"][what].as_str(),
                Some(colour.as_str()),
                "{name}: {what}"
            );
        }

        // Nothing wider than the viewport: the reader never scrolls sideways (code blocks and
        // tables scroll inside themselves).
        let width = view["innerWidth"].as_i64().unwrap();
        // On a phone, content wider than the screen widens the layout viewport instead.
        assert_eq!(
            width,
            view["width"].as_i64().unwrap(),
            "{name}: the layout viewport grew past the screen; too wide: {}",
            view["wide"]
        );
        assert!(
            view["scrollWidth"].as_i64().unwrap() <= width,
            "{name}: the page is {} px wide in a {width} px viewport; too wide: {}",
            view["scrollWidth"],
            view["wide"]
        );
        assert_eq!(
            view["wide"],
            json!([]),
            "{name}: elements past the right edge"
        );
    }
    // The two schemes differ where the stylesheet says they do.
    assert_ne!(light["--bg"], dark["--bg"]);
}
