//! The page at `/`: one HTML file compiled in (no CDN, no other request
//! but `/graph.json` once a second and `/instances` on a click), with the
//! first view's `graph.json` embedded so that it shows at once.

/// The page, with `/*FIRST*/` where the first graph goes.
const PAGE: &str = include_str!("page.html");

/// The page with `graph_json` embedded. `</` is written `<\/` (the same
/// JSON) so that no name in the graph can end the script element.
pub(crate) fn render(graph_json: &str) -> String {
    PAGE.replacen("/*FIRST*/", &graph_json.replace("</", "<\\/"), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_graph_is_embedded_and_cannot_close_the_script() {
        let page = render(r#"{"kinds":[{"kind":"</script><b>"}]}"#);
        assert!(page.contains(r#"{"kinds":[{"kind":"<\/script><b>"}]}"#));
        assert_eq!(
            page.matches("</script>").count(),
            PAGE.matches("</script>").count()
        );
        assert!(!page.contains("/*FIRST*/"));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no CDN"
        );
    }
}
