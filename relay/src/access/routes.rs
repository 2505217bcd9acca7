//! The route table: every route is added together with what it needs.
//!
//! [`RouteTable::add`] registers a handler on the router *and* records a
//! [`Rule`]; the [`super::guard`] looks the matched route up in those rules
//! and refuses any route that has none. So the router and its rules cannot
//! drift apart, and tests walk [`RouteTable::rules`] with every role.

use std::collections::HashMap;

use axum::{http::Method, routing::MethodRouter, Router};

use super::Role;
use crate::app::AppState;

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health, heartbeat, the dashboard page, and routes that
    /// prove themselves otherwise (Twitch's signed webhook, the OAuth
    /// callback's one-time state).
    Public,
    /// `Authorization: Token <token>` of at least this role.
    Token(Role),
    /// A websocket whose first frame carries a token of at least this role.
    Socket(Role),
}

/// One route's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The method (`None`: any method, as the Helix passthrough).
    pub method: Option<Method>,
    /// The route pattern as registered (`/api/v1/tokens/{id}`).
    pub path: String,
    /// What the caller needs.
    pub need: Need,
}

/// A router under construction, with the rule of every route on it.
pub struct RouteTable {
    router: Router<AppState>,
    rules: Vec<Rule>,
}

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable::new()
    }
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> RouteTable {
        RouteTable {
            router: Router::new(),
            rules: Vec::new(),
        }
    }

    /// Adds `handler` for `method` on `path`, needing `need`.
    pub fn add(
        mut self,
        method: Method,
        path: &str,
        need: Need,
        handler: MethodRouter<AppState>,
    ) -> RouteTable {
        self.router = self.router.route(path, handler);
        self.rules.push(Rule {
            method: Some(method),
            path: path.to_string(),
            need,
        });
        self
    }

    /// Adds `handler` for every method on `path`.
    pub fn any(mut self, path: &str, need: Need, handler: MethodRouter<AppState>) -> RouteTable {
        self.router = self.router.route(path, handler);
        self.rules.push(Rule {
            method: None,
            path: path.to_string(),
            need,
        });
        self
    }

    /// Applies `f` to the router (layers that belong to one route group).
    pub fn map_router(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = f(self.router);
        self
    }

    /// Every rule, in registration order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The router and its rules, indexed for the guard.
    pub fn into_parts(self) -> (Router<AppState>, Rules) {
        let mut index = HashMap::new();
        for rule in self.rules {
            index.insert((rule.method.clone(), rule.path.clone()), rule.need);
        }
        (self.router, Rules { index })
    }
}

/// The rules, looked up by method and matched route pattern.
#[derive(Debug, Clone)]
pub struct Rules {
    index: HashMap<(Option<Method>, String), Need>,
}

impl Rules {
    /// The need of `method` on the route pattern `path`, if it has a rule.
    /// `HEAD` is served by `GET` handlers, so it needs what `GET` needs.
    pub fn need(&self, method: &Method, path: &str) -> Option<Need> {
        let method = if method == Method::HEAD {
            Method::GET
        } else {
            method.clone()
        };
        self.index
            .get(&(Some(method), path.to_string()))
            .or_else(|| self.index.get(&(None, path.to_string())))
            .copied()
    }

    /// The methods with a rule on the route pattern `path` (`HEAD` with
    /// `GET`), sorted: what a 405's `Allow` header lists.
    pub fn methods(&self, path: &str) -> Vec<Method> {
        let mut methods: Vec<Method> = self
            .index
            .keys()
            .filter(|(_, p)| p == path)
            .filter_map(|(m, _)| m.clone())
            .collect();
        if methods.contains(&Method::GET) {
            methods.push(Method::HEAD);
        }
        methods.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        methods
    }
}
