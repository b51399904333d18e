//! A matchit table from `(method, path pattern)` to an endpoint: the built-in endpoint
//! table and every extension's own table are one of these.

use hyper::Method;

/// An extension's own endpoint table: `(method, path pattern)` to a value the extension
/// dispatches on, matched with matchit like the built-in endpoints, so a template lists
/// its paths once instead of splitting and comparing segments by hand. Patterns use
/// matchit's syntax: `{id}` for one segment, `{*rest}` for the rest of the path (one
/// character or more); a static segment wins over a parameter (`/chats/customer` before
/// `/chats/{id}`).
///
/// ```
/// use chat_server::extension::{Matched, PathTable};
/// use hyper::Method;
///
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// enum Desk { ListChats, OneChat }
///
/// let table = PathTable::new([
///     (Method::GET, "/api/chats", Desk::ListChats),
///     (Method::GET, "/api/chats/{id}", Desk::OneChat),
/// ]);
/// let Matched::Found { endpoint, pattern, params } = table.find(&Method::GET, "/api/chats/7")
/// else { unreachable!() };
/// assert_eq!((*endpoint, pattern, params.get("id")), (Desk::OneChat, "/api/chats/{id}", Some("7")));
/// assert!(matches!(table.find(&Method::POST, "/api/chats"), Matched::MethodNotAllowed { .. }));
/// assert!(matches!(table.find(&Method::GET, "/elsewhere"), Matched::NotFound));
/// ```
pub struct PathTable<E> {
    paths: matchit::Router<(&'static str, Vec<(Method, E)>)>,
}

/// What a [`PathTable`] found for a request.
#[derive(Debug)]
pub enum Matched<'t, E> {
    /// An endpoint, with its pattern (a bounded name for metrics and logs) and the
    /// path's parameters.
    Found {
        /// The value given for this method and pattern.
        endpoint: &'t E,
        /// The pattern that matched.
        pattern: &'static str,
        /// The parameters of the pattern, decoded as matchit gives them.
        params: PathParams,
    },
    /// The path is one of the table's, not with this method.
    MethodNotAllowed {
        /// The pattern that matched.
        pattern: &'static str,
        /// The methods it takes.
        allowed: Vec<Method>,
    },
    /// No pattern matches the path.
    NotFound,
}

/// The parameters a pattern took from a path, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParams(Vec<(String, String)>);

impl PathParams {
    /// The value of parameter `name`, if the pattern has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<E> PathTable<E> {
    /// A table of `(method, pattern, endpoint)` rows.
    ///
    /// # Panics
    /// When two patterns conflict in matchit's terms, or one method and pattern is listed
    /// twice: the table is written by hand, so this is a mistake to fix at once.
    pub fn new(rows: impl IntoIterator<Item = (Method, &'static str, E)>) -> Self {
        let mut by_pattern: Vec<(&'static str, Vec<(Method, E)>)> = Vec::new();
        for (method, pattern, endpoint) in rows {
            match by_pattern.iter_mut().find(|(p, _)| *p == pattern) {
                Some((_, methods)) => {
                    assert!(
                        methods.iter().all(|(m, _)| *m != method),
                        "{method} {pattern} is listed twice"
                    );
                    methods.push((method, endpoint));
                }
                None => by_pattern.push((pattern, vec![(method, endpoint)])),
            }
        }
        let mut paths = matchit::Router::new();
        for (pattern, methods) in by_pattern {
            if let Err(e) = paths.insert(pattern, (pattern, methods)) {
                panic!("{pattern}: {e}");
            }
        }
        Self { paths }
    }

    /// The endpoint of `method` on `path`.
    pub fn find(&self, method: &Method, path: &str) -> Matched<'_, E> {
        let Ok(matched) = self.paths.at(path) else {
            return Matched::NotFound;
        };
        let (pattern, methods) = matched.value;
        match methods.iter().find(|(m, _)| m == method) {
            Some((_, endpoint)) => Matched::Found {
                endpoint,
                pattern,
                params: PathParams(
                    matched
                        .params
                        .iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                ),
            },
            None => Matched::MethodNotAllowed {
                pattern,
                allowed: methods.iter().map(|(m, _)| m.clone()).collect(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_segments_win_over_parameters_and_catch_alls_take_the_rest() {
        let table = PathTable::new([
            (Method::GET, "/chats/{id}", 1),
            (Method::GET, "/chats/customer", 2),
            (Method::POST, "/chats/customer", 3),
            (Method::GET, "/files/{chat}/{*key}", 4),
        ]);
        let found = |method: Method, path: &str| match table.find(&method, path) {
            Matched::Found {
                endpoint, params, ..
            } => Some((*endpoint, params)),
            _ => None,
        };
        assert_eq!(found(Method::GET, "/chats/customer").unwrap().0, 2);
        assert_eq!(found(Method::POST, "/chats/customer").unwrap().0, 3);
        let (endpoint, params) = found(Method::GET, "/chats/12").unwrap();
        assert_eq!((endpoint, params.get("id")), (1, Some("12")));
        let (endpoint, params) = found(Method::GET, "/files/3/ab12/photo.png").unwrap();
        assert_eq!(endpoint, 4);
        assert_eq!(params.get("key"), Some("ab12/photo.png"));
        assert_eq!(
            found(Method::GET, "/files/3/"),
            None,
            "a key is never empty"
        );
        match table.find(&Method::DELETE, "/chats/customer") {
            Matched::MethodNotAllowed { pattern, allowed } => {
                assert_eq!(pattern, "/chats/customer");
                assert_eq!(allowed, vec![Method::GET, Method::POST]);
            }
            other => panic!("expected 405, got {other:?}"),
        }
    }

    #[test]
    #[should_panic(expected = "listed twice")]
    fn a_method_and_pattern_listed_twice_is_refused() {
        let _ = PathTable::new([(Method::GET, "/a", 1), (Method::GET, "/a", 2)]);
    }
}
