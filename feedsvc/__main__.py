from feedsvc.cli import cli

cli()
