from feedsvc import create_app

app = create_app()
