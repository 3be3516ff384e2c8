//! A small HTML reader for tests: a page as a tree of elements, to check what sits inside what.
//!
//! It reads the HTML bshare writes (every element closed, attribute values quoted, text
//! escaped); it is not a general HTML5 parser.

#[derive(Debug, Default)]
pub struct Node {
    /// Lower-case tag name; `#text` for text.
    pub tag: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    /// The decoded text of a `#text` node.
    pub text: String,
}

const VOID: &[&str] = &["meta", "link", "img", "br", "hr", "input"];

impl Node {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|c| c.split_whitespace().any(|c| c == class))
    }

    /// Every element below this one (not itself), in document order, that `pred` accepts.
    pub fn find_all<'a>(&'a self, pred: &dyn Fn(&Node) -> bool) -> Vec<&'a Node> {
        let mut out = Vec::new();
        fn walk<'a>(n: &'a Node, pred: &dyn Fn(&Node) -> bool, out: &mut Vec<&'a Node>) {
            for c in &n.children {
                if c.tag != "#text" && pred(c) {
                    out.push(c);
                }
                walk(c, pred, out);
            }
        }
        walk(self, pred, &mut out);
        out
    }

    /// Elements below this one with tag `tag` and class `class`.
    pub fn select<'a>(&'a self, tag: &str, class: &str) -> Vec<&'a Node> {
        self.find_all(&|n| n.tag == tag && n.has_class(class))
    }

    /// The direct children that are elements.
    pub fn elements(&self) -> impl Iterator<Item = &Node> {
        self.children.iter().filter(|c| c.tag != "#text")
    }

    /// All text below this node, decoded.
    pub fn text(&self) -> String {
        let mut s = self.text.clone();
        for c in &self.children {
            s.push_str(&c.text());
        }
        s
    }
}

fn decode(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// The document as a tree under a root node of tag `#document`.
pub fn parse(html: &str) -> Node {
    let mut stack = vec![Node {
        tag: "#document".into(),
        ..Node::default()
    }];
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push_text(&mut stack, rest);
            break;
        };
        push_text(&mut stack, &rest[..lt]);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
            continue;
        }
        let end = rest.find('>').expect("a tag ends");
        let inside = &rest[1..end];
        rest = &rest[end + 1..];
        if inside.starts_with('!') {
            continue;
        }
        if let Some(name) = inside.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            // Close up to the matching open element.
            if stack.iter().skip(1).any(|n| n.tag == name) {
                loop {
                    let node = stack.pop().unwrap();
                    let done = node.tag == name;
                    stack.last_mut().unwrap().children.push(node);
                    if done {
                        break;
                    }
                }
            }
            continue;
        }
        let (node, self_closing) = open_tag(inside);
        if self_closing || VOID.contains(&node.tag.as_str()) {
            stack.last_mut().unwrap().children.push(node);
        } else {
            stack.push(node);
        }
    }
    while stack.len() > 1 {
        let node = stack.pop().unwrap();
        stack.last_mut().unwrap().children.push(node);
    }
    stack.pop().unwrap()
}

fn push_text(stack: &mut [Node], text: &str) {
    if !text.is_empty() {
        stack.last_mut().unwrap().children.push(Node {
            tag: "#text".into(),
            text: decode(text),
            ..Node::default()
        });
    }
}

fn open_tag(inside: &str) -> (Node, bool) {
    let self_closing = inside.ends_with('/');
    let inside = inside.trim_end_matches('/');
    let name_end = inside
        .find(|c: char| c.is_whitespace())
        .unwrap_or(inside.len());
    let mut node = Node {
        tag: inside[..name_end].to_ascii_lowercase(),
        ..Node::default()
    };
    let mut rest = inside[name_end..].trim_start();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = rest[..key_end].to_ascii_lowercase();
        rest = rest[key_end..].trim_start();
        let value = if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            if let Some(q) = after.strip_prefix('"') {
                let e = q.find('"').expect("a quoted value ends");
                rest = &q[e + 1..];
                decode(&q[..e])
            } else {
                let e = after.find(char::is_whitespace).unwrap_or(after.len());
                rest = &after[e..];
                decode(&after[..e])
            }
        } else {
            String::new()
        };
        node.attrs.push((key, value));
        rest = rest.trim_start();
    }
    (node, self_closing)
}

#[test]
fn reads_nesting_attributes_and_text() {
    let doc = parse(
        "<!doctype html><html><body><div class=\"a b\" id=x><p>one &amp; <b>two</b></p><img src=\"i.png\"><details open><summary>s</summary>in</details></div><!-- c --></body></html>",
    );
    let div = &doc.select("div", "b")[0];
    assert_eq!(div.attr("id"), Some("x"));
    assert_eq!(div.text(), "one & twosin");
    let kids: Vec<&str> = div.elements().map(|n| n.tag.as_str()).collect();
    assert_eq!(kids, ["p", "img", "details"]);
    assert_eq!(
        doc.find_all(&|n| n.tag == "details")[0].attr("open"),
        Some("")
    );
}
