" Detect Charter policy files.
autocmd BufRead,BufNewFile *.agentpolicy setfiletype agentpolicy
