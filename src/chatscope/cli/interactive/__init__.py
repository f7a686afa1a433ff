"""The interactive chat: `chatscope` (or `chatscope chat` without a prompt) on a terminal.

`launch` decides when it opens and keeps the command line's start-up light; `repl` is the
loop, `slash` the commands' syntax and `handlers` what they do, `conversation` the application
and the scope the chat talks in, `render` how answers look (rich), `prompt` the line editor
(prompt_toolkit). Nothing here is imported by `chatscope --help`.
"""
