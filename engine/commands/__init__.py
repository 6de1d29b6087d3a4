"""One module per `viewfinder` subcommand, each with add_parser(sub) and run(args) -> exit code."""
