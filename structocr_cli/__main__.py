from structocr_cli.cli import main

main()
