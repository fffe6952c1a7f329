" Vim filetype plugin for Charter .agentpolicy files.
if exists('b:did_ftplugin')
  finish
endif
let b:did_ftplugin = 1

let s:cpo_save = &cpo
set cpo&vim

" '#' is the only comment leader; 'fo' keeps comment leaders when wrapping or
" opening lines inside a comment block.
setlocal commentstring=#\ %s
setlocal comments=:#
setlocal formatoptions-=t formatoptions+=croql
" The formatter (charter fmt) and the examples use two-space indentation.
setlocal expandtab shiftwidth=2 softtabstop=2 tabstop=8
" Rule ids, globs and dotted paths are easier to jump over as whole words.
setlocal iskeyword=@,48-57,_,192-255
setlocal suffixesadd=.agentpolicy

let b:undo_ftplugin = 'setlocal commentstring< comments< formatoptions< expandtab< '
      \ . 'shiftwidth< softtabstop< tabstop< iskeyword< suffixesadd<'

let &cpo = s:cpo_save
unlet s:cpo_save
