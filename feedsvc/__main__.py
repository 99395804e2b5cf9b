from feedsvc.cli import cli

cli(prog_name="feedsvc")
