from llmunix.cli.main import main

main()
