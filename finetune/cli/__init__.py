"""The ``agent finetune`` commands and the console helpers every command line of qagent uses."""
