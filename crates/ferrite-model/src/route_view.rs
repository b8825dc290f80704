//! A route as API answers show it. Its `jwt_key` is write-only: an answer
//! says whether the route has one (`jwt_key_set`), never what it is, so that
//! whoever may read routes (a dashboard, a log of answers, a CI job) cannot
//! call them in the route owner's name.
//!
//! Only answers go through this type: the store, the queue and the caches
//! keep the [`Route`] whole, since the invoke path needs the key.

use serde::{Deserialize, Serialize};

use crate::{Route, TrafficEntry};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RouteView {
    /// Every field of the route; its `jwt_key` is `None` here, so it is left
    /// out of the JSON.
    #[serde(flatten)]
    pub route: Route,
    /// Whether calls need a token signed with the route's `jwt_key`. Left
    /// out when false, as the key was when unset, so IronFunctions clients
    /// see the documents they know.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub jwt_key_set: bool,
    /// Which versions serve its calls and how: its `traffic`, or its newest
    /// version with a weight of 100 when it has none. Shown only.
    #[serde(default)]
    pub serving: Vec<TrafficEntry>,
}

impl From<Route> for RouteView {
    fn from(mut route: Route) -> RouteView {
        let jwt_key_set = route.jwt_key.take().is_some();
        let serving = route.serving();
        RouteView {
            route,
            jwt_key_set,
            serving,
        }
    }
}

impl RouteView {
    /// Whether the route has a key; also true for an answer of an older
    /// server, which still showed the key itself.
    pub fn has_jwt_key(&self) -> bool {
        self.jwt_key_set || self.route.jwt_key.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RouteInput;

    fn route(jwt_key: Option<&str>) -> Route {
        let input = RouteInput {
            path: Some("/hello".into()),
            image: Some("ferrite/hello".into()),
            jwt_key: jwt_key.map(String::from),
            ..RouteInput::default()
        };
        Route::create("myapp", input).unwrap()
    }

    #[test]
    fn the_key_is_never_shown() {
        let shown = serde_json::to_value(RouteView::from(route(Some("hunter2")))).unwrap();
        assert_eq!(shown["jwt_key_set"], true);
        assert!(shown.get("jwt_key").is_none());
        assert!(!shown.to_string().contains("hunter2"));
        assert_eq!(shown["path"], "/hello");
        assert_eq!(shown["type"], "sync");

        let shown = serde_json::to_value(RouteView::from(route(None))).unwrap();
        assert!(shown.get("jwt_key_set").is_none());
        assert!(shown.get("jwt_key").is_none());
    }

    #[test]
    fn answers_read_back() {
        let text = serde_json::to_string(&RouteView::from(route(Some("k")))).unwrap();
        let read: RouteView = serde_json::from_str(&text).unwrap();
        assert!(read.has_jwt_key());
        assert_eq!(read.route.path, "/hello");
        let older = serde_json::to_string(&route(Some("k"))).unwrap();
        assert!(serde_json::from_str::<RouteView>(&older)
            .unwrap()
            .has_jwt_key());
    }
}
