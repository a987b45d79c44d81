//! ServeMux patterns (Go 1.22's `[METHOD ][HOST]/[PATH]`), their matching, and the
//! "more specific" relation that picks a winner and finds conflicts (Go's pattern.go).

use std::borrow::Cow;
use std::sync::Arc;

use super::query::unescape;

/// One path segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A literal segment, unescaped. `""` is `{$}`'s (the empty segment after a final `/`).
    Lit(String),
    /// `{name}`: one non-empty segment.
    Wild(Arc<str>),
    /// `{name...}` or a trailing `/`: the rest of the path, at least one segment.
    Multi(Option<Arc<str>>),
}

/// A parsed pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) raw: Arc<str>,
    pub(crate) method: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) segs: Vec<Seg>,
}

/// How the sets of requests two patterns match relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rel {
    Equivalent,
    MoreSpecific,
    MoreGeneral,
    Overlaps,
    Disjoint,
}

fn combine(a: Rel, b: Rel) -> Rel {
    use Rel::*;
    match (a, b) {
        (Disjoint, _) | (_, Disjoint) => Disjoint,
        (Equivalent, x) | (x, Equivalent) => x,
        (x, y) if x == y => x,
        _ => Overlaps,
    }
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_alphabetic() || f == '_')
        && c.all(|ch| ch.is_alphanumeric() || ch == '_')
}

/// Parses a pattern, with Go's error texts.
pub(crate) fn parse(raw: &str) -> Result<Pattern, String> {
    if raw.is_empty() {
        return Err("empty pattern".into());
    }
    let (method, rest) = match raw.find([' ', '\t']) {
        Some(i) => (Some(&raw[..i]), raw[i..].trim_start_matches([' ', '\t'])),
        None => (None, raw),
    };
    if let Some(m) = method {
        if m.is_empty()
            || !m
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(format!("invalid method {m:?}"));
        }
    }
    let slash = rest
        .find('/')
        .ok_or_else(|| "host/path missing /".to_string())?;
    let host = &rest[..slash];
    let path = &rest[slash..];
    let mut segs = Vec::new();
    let mut names: Vec<Arc<str>> = Vec::new();
    let mut p = &path[1..];
    loop {
        let (seg, more) = match p.find('/') {
            Some(i) => (&p[..i], Some(&p[i + 1..])),
            None => (p, None),
        };
        if more.is_none() && seg.is_empty() {
            // A trailing slash (or the root "/"): matches the rest.
            segs.push(Seg::Multi(None));
            break;
        }
        if let Some(inner) = seg.strip_prefix('{') {
            let inner = inner
                .strip_suffix('}')
                .ok_or_else(|| "bad wildcard segment (must be \"{name}\")".to_string())?;
            if inner == "$" {
                if more.is_some() {
                    return Err("{$} not at end".into());
                }
                segs.push(Seg::Lit(String::new()));
                break;
            }
            let (name, multi) = match inner.strip_suffix("...") {
                Some(n) => (n, true),
                None => (inner, false),
            };
            if !is_ident(name) {
                return Err(format!("bad wildcard name {name:?}"));
            }
            if names.iter().any(|n| &**n == name) {
                return Err(format!("duplicate wildcard name {name:?}"));
            }
            let name: Arc<str> = Arc::from(name);
            names.push(name.clone());
            if multi {
                if more.is_some() {
                    return Err("{...} wildcard not at end".into());
                }
                segs.push(Seg::Multi(Some(name)));
                break;
            }
            segs.push(Seg::Wild(name));
        } else {
            if seg.contains(['{', '}']) {
                return Err("bad wildcard segment (must be \"{name}\" and a whole segment)".into());
            }
            segs.push(Seg::Lit(unescape(seg, false).into_owned()));
        }
        match more {
            Some(m) => p = m,
            None => break,
        }
    }
    Ok(Pattern {
        raw: Arc::from(raw),
        method: method.map(str::to_owned),
        host: (!host.is_empty()).then(|| host.to_owned()),
        segs,
    })
}

impl Pattern {
    /// Whether the method matches (`GET` also matches `HEAD`).
    pub(crate) fn method_matches(&self, method: &str) -> bool {
        match &self.method {
            None => true,
            Some(m) => m == method || (m == "GET" && method == "HEAD"),
        }
    }

    /// Matches the escaped `path` (starting with `/`), pushing the wildcards' byte ranges
    /// into `caps` (in pattern order). `caps` is cleared first.
    pub(crate) fn match_path(&self, path: &str, caps: &mut Vec<(usize, usize)>) -> bool {
        caps.clear();
        // Byte slices: segment boundaries are ASCII '/', and no `str` boundary checks.
        let b = path.as_bytes();
        if b.first() != Some(&b'/') {
            return false;
        }
        // `pos`: start of the current segment; `None` once every segment was consumed.
        let mut pos = Some(1);
        for seg in &self.segs {
            let Some(start) = pos else { return false };
            if let Seg::Multi(_) = seg {
                caps.push((start, b.len()));
                return true;
            }
            let end = b[start..]
                .iter()
                .position(|&c| c == b'/')
                .map_or(b.len(), |i| start + i);
            let s = &b[start..end];
            match seg {
                Seg::Lit(l) => {
                    if s != l.as_bytes()
                        && !(s.contains(&b'%') && unescape(&path[start..end], false) == l.as_str())
                    {
                        return false;
                    }
                }
                Seg::Wild(_) => {
                    if s.is_empty() {
                        return false;
                    }
                    caps.push((start, end));
                }
                Seg::Multi(_) => unreachable!(),
            }
            pos = (end < b.len()).then_some(end + 1);
        }
        pos.is_none()
    }

    /// The wildcard names in capture order (anonymous multis included as `None`).
    pub(crate) fn cap_names(&self) -> impl Iterator<Item = Option<&Arc<str>>> {
        self.segs.iter().filter_map(|s| match s {
            Seg::Wild(n) => Some(Some(n)),
            Seg::Multi(n) => Some(n.as_ref()),
            Seg::Lit(_) => None,
        })
    }

    fn compare_methods(&self, o: &Pattern) -> Rel {
        match (&self.method, &o.method) {
            (None, None) => Rel::Equivalent,
            (Some(_), None) => Rel::MoreSpecific,
            (None, Some(_)) => Rel::MoreGeneral,
            (Some(a), Some(b)) if a == b => Rel::Equivalent,
            (Some(a), Some(b)) if a == "HEAD" && b == "GET" => Rel::MoreSpecific,
            (Some(a), Some(b)) if a == "GET" && b == "HEAD" => Rel::MoreGeneral,
            _ => Rel::Disjoint,
        }
    }

    fn compare_paths(&self, o: &Pattern) -> Rel {
        let mut rel = Rel::Equivalent;
        let mut i = 0;
        loop {
            match (self.segs.get(i), o.segs.get(i)) {
                (None, None) => return rel,
                (Some(Seg::Multi(_)), Some(Seg::Multi(_))) => return rel,
                (Some(Seg::Multi(_)), Some(_)) => return combine(rel, Rel::MoreGeneral),
                (Some(_), Some(Seg::Multi(_))) => return combine(rel, Rel::MoreSpecific),
                (Some(_), None) | (None, Some(_)) => return Rel::Disjoint,
                (Some(a), Some(b)) => {
                    let r = match (a, b) {
                        (Seg::Lit(x), Seg::Lit(y)) if x == y => Rel::Equivalent,
                        (Seg::Lit(_), Seg::Lit(_)) => Rel::Disjoint,
                        (Seg::Lit(x), Seg::Wild(_)) if x.is_empty() => Rel::Disjoint,
                        (Seg::Lit(_), Seg::Wild(_)) => Rel::MoreSpecific,
                        (Seg::Wild(_), Seg::Lit(y)) if y.is_empty() => Rel::Disjoint,
                        (Seg::Wild(_), Seg::Lit(_)) => Rel::MoreGeneral,
                        _ => Rel::Equivalent,
                    };
                    rel = combine(rel, r);
                    if rel == Rel::Disjoint {
                        return rel;
                    }
                }
            }
            i += 1;
        }
    }

    /// How the requests `self` matches relate to those `o` matches (same host assumed).
    pub(crate) fn compare(&self, o: &Pattern) -> Rel {
        let m = self.compare_methods(o);
        if m == Rel::Disjoint {
            return m;
        }
        combine(m, self.compare_paths(o))
    }
}

/// Go's `cleanPath`: the canonical form of a path (no `.`/`..` segments, no doubled
/// slashes), keeping a trailing slash. Borrows when `p` is already clean.
pub(crate) fn clean_path(p: &str) -> Cow<'_, str> {
    // One pass: after the leading '/', no segment is "." or "..", and only the last may be
    // empty (a trailing slash).
    let b = p.as_bytes();
    let mut is_clean = b.first() == Some(&b'/');
    if is_clean {
        // Look at each segment start (after a '/').
        for (i, &c) in b.iter().enumerate() {
            if c != b'/' {
                continue;
            }
            let rest = &b[i + 1..];
            let bad = match rest {
                [] => false,
                [b'/', ..] => true,
                [b'.'] | [b'.', b'/', ..] => true,
                [b'.', b'.'] | [b'.', b'.', b'/', ..] => true,
                _ => false,
            };
            if bad {
                is_clean = false;
                break;
            }
        }
    }
    if is_clean {
        return Cow::Borrowed(p);
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut s = String::with_capacity(p.len() + 1);
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    let trailing = p.ends_with('/') || p.ends_with("/.") || p.ends_with("/..");
    if s.is_empty() || trailing {
        s.push('/');
    }
    Cow::Owned(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pat: &str, path: &str) -> Option<Vec<String>> {
        let p = parse(pat).unwrap();
        let mut caps = Vec::new();
        p.match_path(path, &mut caps)
            .then(|| caps.iter().map(|&(a, b)| path[a..b].to_owned()).collect())
    }

    #[test]
    fn matching() {
        assert_eq!(
            m("/", "/anything/at/all"),
            Some(vec!["anything/at/all".into()])
        );
        assert_eq!(m("/{$}", "/"), Some(vec![]));
        assert_eq!(m("/{$}", "/x"), None);
        assert_eq!(m("/items/{id}", "/items/42"), Some(vec!["42".into()]));
        assert_eq!(m("/items/{id}", "/items/"), None);
        assert_eq!(m("/items/{id}", "/items/42/x"), None);
        assert_eq!(m("/items/", "/items"), None);
        assert_eq!(m("/items/", "/items/"), Some(vec!["".into()]));
        assert_eq!(m("/f/{p...}", "/f/a/b"), Some(vec!["a/b".into()]));
        assert_eq!(m("/a%20b", "/a%20b"), Some(vec![]));
        assert_eq!(m("/a%20b/{x}", "/a%20b/1"), Some(vec!["1".into()]));
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "",
            "GET",
            "/{x",
            "/a{x}",
            "/{x}/{x}",
            "/{$}/a",
            "/{a...}/b",
            "/{1x}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let p = parse("GET example.com/a/{b}").unwrap();
        assert_eq!(p.method.as_deref(), Some("GET"));
        assert_eq!(p.host.as_deref(), Some("example.com"));
    }

    #[test]
    fn relations() {
        let r = |a: &str, b: &str| parse(a).unwrap().compare(&parse(b).unwrap());
        assert_eq!(r("/a/b", "/a/{x}"), Rel::MoreSpecific);
        assert_eq!(r("/a/", "/a/b"), Rel::MoreGeneral);
        assert_eq!(r("GET /a", "/a"), Rel::MoreSpecific);
        assert_eq!(r("GET /", "/index.html"), Rel::Overlaps);
        assert_eq!(r("/a/{x}", "/{y}/b"), Rel::Overlaps);
        assert_eq!(r("/a/{x}", "/a/{y}"), Rel::Equivalent);
        assert_eq!(r("GET /a", "POST /a"), Rel::Disjoint);
        assert_eq!(r("HEAD /a", "GET /a"), Rel::MoreSpecific);
        assert_eq!(r("/a/{$}", "/a/"), Rel::MoreSpecific);
        assert_eq!(r("/a/{$}", "/a/{x}"), Rel::Disjoint);
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean_path("/a/b"), "/a/b");
        assert_eq!(clean_path("/a//b"), "/a/b");
        assert_eq!(clean_path("/a/./b/../c/"), "/a/c/");
        assert_eq!(clean_path("/.."), "/");
        assert_eq!(clean_path("/a/.."), "/");
    }
}
