"""feedsvc: publish a folder of news records as Atom and RSS feeds.

Data flows one way: frontmatter (the only module that reads YAML) -> fields -> records ->
repository -> feeds -> render -> web / cli; README.md, Layout, names every module.
"""

from feedsvc.web import create_app

__all__ = ["create_app"]
