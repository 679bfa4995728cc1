complete --command structocr --no-files
complete --command structocr --no-files --arguments "(env _STRUCTOCR_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=get-args _TYPER_COMPLETE_ARGS=(commandline -cp) structocr)" --condition "env _STRUCTOCR_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=is-args _TYPER_COMPLETE_ARGS=(commandline -cp) structocr"
complete --command structocr --long-option api-key-file --require-parameter --force-files
complete --command structocr --long-option keys-file --require-parameter --force-files
complete --command structocr --long-option ca-bundle --require-parameter --force-files
complete --command structocr --long-option fixtures --require-parameter --force-files
