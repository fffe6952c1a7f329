" Vim indent file for Charter .agentpolicy files.
" Blocks ({ } [ ] ( )) indent by one level; a rule's continuation clauses
" (when/unless/because/then on their own line) hang one level under the rule.
if exists('b:did_indent')
  finish
endif
let b:did_indent = 1

setlocal autoindent
setlocal indentexpr=GetAgentPolicyIndent(v:lnum)
setlocal indentkeys=0{,0},0),0],!^F,o,O,e,=because,=when,=unless,=then

let b:undo_indent = 'setlocal autoindent< indentexpr< indentkeys<'

if exists('*GetAgentPolicyIndent')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

let s:continuation = '^\s*\%(because\|when\|unless\|then\)\>'

" Drop strings and comments so that braces inside them do not count.
function! s:Code(lnum) abort
  let line = substitute(getline(a:lnum), '\<r\="\%(\\.\|[^"\\]\)*"', '""', 'g')
  return substitute(line, '#.*$', '', '')
endfunction

" The first line of the statement that line lnum belongs to.
function! s:StatementStart(lnum) abort
  let lnum = a:lnum
  while lnum > 1 && getline(lnum) =~# s:continuation
    let lnum = prevnonblank(lnum - 1)
  endwhile
  return lnum
endfunction

function! GetAgentPolicyIndent(lnum) abort
  let prev = prevnonblank(a:lnum - 1)
  if prev == 0
    return 0
  endif
  let prevcode = s:Code(prev)
  let cur = getline(a:lnum)
  let sw = shiftwidth()

  if prevcode =~# '[{[(]\s*$'
    let ind = indent(prev) + sw
  else
    " After a hanging clause, go back to the indent of the statement it hangs from.
    let ind = indent(s:StatementStart(prev))
  endif

  if cur =~# '^\s*[}\])]'
    return ind - sw
  endif
  if cur =~# s:continuation && prevcode !~# '[{[(]\s*$'
    return ind + sw
  endif
  return ind
endfunction

let &cpo = s:cpo_save
unlet s:cpo_save
