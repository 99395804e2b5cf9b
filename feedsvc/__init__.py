"""feedsvc: publish a folder of news records as Atom and RSS feeds.

Data flows one way: records -> repository -> feeds -> render -> web / cli.
"""

from feedsvc.web import create_app

__all__ = ["create_app"]
