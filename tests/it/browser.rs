//! The share page in a real browser: headless Chromium at desktop and phone widths, light and dark.

use crate::support::{self, Env, Stores, read_data, share_document};

fn chromium(args: &[&str], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    std::process::Command::new(std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into()))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            // Not a virtual-time budget: virtual time stands still while a request is open, and the
            // page keeps its event stream open. The page is laid out once it has loaded.
            "--timeout=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium is needed for the page tests (Debian: apt-get install chromium)")
}

#[test]
fn page_renders_in_chromium_at_both_widths_and_schemes() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let created = share_document(&server, &read_data("opencode-1.18.33-long.sharedata.json"));
    let url = server.url(&format!("/share/{}", created["shareId"].as_str().unwrap()));

    // The DOM the browser built: the whole conversation is there, and no script but the page's
    // own live-follow script from this server.
    let dom = chromium(&["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("Add multiply, tests and CLI"), "{dom:.2000}");
    assert!(dom.contains("[long-2]"), "the last prompt is on the page");
    let lower = dom.to_ascii_lowercase();
    assert_eq!(lower.matches("<script").count(), 1, "one script tag");
    assert!(dom.contains(&format!(
        "<script src=\"{}\" defer=\"\"></script>",
        bshare::render::live_script_path()
    )));

    let shots = tempfile::tempdir().unwrap();
    let mut pngs = Vec::new();
    for (name, width, height) in [("desktop", 1280, 1800), ("phone", 390, 1600)] {
        for (scheme, flags) in [
            ("light", &["--blink-settings=preferredColorScheme=1"][..]),
            (
                "dark",
                &[
                    "--force-dark-mode",
                    "--blink-settings=preferredColorScheme=0",
                ][..],
            ),
        ] {
            let file = shots.path().join(format!("{name}-{scheme}.png"));
            let mut args = vec![
                format!("--window-size={width},{height}"),
                format!("--screenshot={}", file.display()),
            ];
            args.extend(flags.iter().map(|f| (*f).to_owned()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = chromium(&args, &url);
            let png = std::fs::read(&file).unwrap_or_else(|_| {
                panic!(
                    "no screenshot {name}-{scheme}: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            assert_eq!(&png[1..4], b"PNG");
            let (w, h) = png_size(&png);
            assert_eq!((w, h), (width, height), "{name}-{scheme}");
            pngs.push((format!("{name}-{scheme}"), png));
        }
    }
    // Dark differs from light at each width: prefers-color-scheme reaches the stylesheet.
    assert_ne!(
        pngs[0].1, pngs[1].1,
        "desktop light and dark are the same picture"
    );
    assert_ne!(
        pngs[2].1, pngs[3].1,
        "phone light and dark are the same picture"
    );
    // The browser fetched the one stylesheet from this server (and nothing else from anywhere).
    assert!(
        support::eventually(std::time::Duration::from_secs(5), || server
            .logs()
            .contains("GET /assets/")),
        "the browser fetched the stylesheet:\n{}",
        server.logs()
    );
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    (w, h)
}
