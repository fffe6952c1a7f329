" Vim syntax file
" Language:    Charter policy (.agentpolicy)
" Maintainer:  Charter authors
" The word lists mirror charter/language/keywords.py; tests/editors/test_keywords.py
" fails when they drift apart.

if exists('b:current_syntax')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn case match
syn iskeyword @,48-57,_,192-255
syn sync minlines=50

" --- words ------------------------------------------------------------------
" Vim prefers a :syn keyword over any match starting at the same column, so the
" words that also appear as request roots (session.id), member names (pii.any)
" or that need a nextgroup are defined as matches further down.
syn keyword agentpolicyKeyword policy version default tools from scope budget limit calls per
syn keyword agentpolicyKeyword then because when unless on
syn keyword agentpolicyKeyword test given call with expect property for all to where labels
syn keyword agentpolicyKeyword scenario fixture approve row usage
syn keyword agentpolicyKeyword has count approved by of previously within
syn keyword agentpolicyKeyword strict trust request turn
syn match   agentpolicyKeyword "\<\%(session\|tool\|result\)\>"
syn keyword agentpolicyKeyword tagged nextgroup=agentpolicyTagName skipwhite
syn keyword agentpolicyKeyword tags nextgroup=agentpolicyTagName skipwhite
syn keyword agentpolicyImport use nextgroup=agentpolicyUseName skipwhite
syn keyword agentpolicyDefine const nextgroup=agentpolicyConstName skipwhite
syn keyword agentpolicyDefine matcher nextgroup=agentpolicyMatcherName skipwhite

syn keyword agentpolicyOperatorWord and or not in like matches contains
syn keyword agentpolicyEffect allow deny warn require approval redact label
syn keyword agentpolicyStage tool_call tool_result model_input model_output
syn keyword agentpolicyType bool int decimal str duration any set list map
syn match   agentpolicyType "\<time\>"
syn keyword agentpolicyFunction len lower upper startswith endswith url_host domain_of
syn keyword agentpolicyFunction cidr_contains hour_of weekday
syn keyword agentpolicyBoolean true false
syn keyword agentpolicyMetric cost_usd tokens
syn keyword agentpolicyModule pii secrets net text
" `time` is a type except right before a member access (time.now).
syn match   agentpolicyModule "\<time\ze\s*\."

" Request roots read as data; session/tool/result only when a path follows.
syn match   agentpolicyContext "\<\%(stage\|agent\|user\|args\|input\|output\|estimate\|approvals\|now\)\>"
syn match   agentpolicyContext "\<\%(session\|tool\|result\)\ze\s*[.[]"

" A member name is never a keyword: the match starts at the dot, so it outranks
" keywords, and the name itself is only reachable through nextgroup.
syn match   agentpolicyAccessor "\.\ze\s*\h" nextgroup=agentpolicyProperty skipwhite
syn match   agentpolicyProperty "\h\w*" contained

syn match   agentpolicyTagName "\h\w*" contained nextgroup=agentpolicyTagComma skipwhite
syn match   agentpolicyTagComma "," contained nextgroup=agentpolicyTagName skipwhite
syn match   agentpolicyUseName "\h\w*" contained nextgroup=agentpolicyUseComma skipwhite
syn match   agentpolicyUseComma "," contained nextgroup=agentpolicyUseName skipwhite
syn match   agentpolicyConstName "\h\w*" contained
syn match   agentpolicyMatcherName "\h\w*" contained

" --- annotations, literals, comments ---------------------------------------
syn match   agentpolicyAnnotation "@\h\w*"

syn match   agentpolicyNumber "\<\d\+\>"
syn match   agentpolicyDecimal "\<\d\+\.\d\+\>"
syn match   agentpolicyDuration "\<\d\+[smhd]\>"

syn region  agentpolicyString start=+"+ skip=+\\\\\|\\"+ end=+"+ end=+$+
      \ contains=agentpolicyEscape,@Spell
syn match   agentpolicyEscape "\\\%(u\x\{4}\|.\)" contained
" r"..." is an RE2 pattern; a backslash escapes the quote but is otherwise literal.
syn region  agentpolicyRegex matchgroup=agentpolicyRegexDelimiter start=+\<r"+ skip=+\\\\\|\\"+
      \ end=+"+ end=+$+ contains=agentpolicyRegexEscape,agentpolicyRegexClass
syn match   agentpolicyRegexEscape "\\." contained
syn match   agentpolicyRegexClass "\[\%(\\.\|[^]\\"]\)*\]" contained contains=agentpolicyRegexEscape

syn match   agentpolicyOperator "==\|!=\|<=\|>=\|[<>=+\-*/?]"

syn keyword agentpolicyTodo TODO FIXME XXX NOTE contained
syn match   agentpolicyComment "#.*$" contains=agentpolicyTodo,@Spell

" Blocks (scope, test, property, records) fold.
syn region  agentpolicyBlock start="{" end="}" transparent fold

" --- links ------------------------------------------------------------------
hi def link agentpolicyKeyword       Keyword
hi def link agentpolicyImport        Include
hi def link agentpolicyDefine        StorageClass
hi def link agentpolicyOperatorWord  Operator
hi def link agentpolicyOperator      Operator
hi def link agentpolicyEffect        Statement
hi def link agentpolicyStage         Constant
hi def link agentpolicyType          Type
hi def link agentpolicyFunction      Function
hi def link agentpolicyBoolean       Boolean
hi def link agentpolicyMetric        Constant
hi def link agentpolicyModule        PreProc
hi def link agentpolicyUseName       agentpolicyModule
hi def link agentpolicyContext       Identifier
hi def link agentpolicyTagName       Label
hi def link agentpolicyConstName     Identifier
hi def link agentpolicyMatcherName   Function
hi def link agentpolicyAnnotation    PreProc
hi def link agentpolicyNumber        Number
hi def link agentpolicyDecimal       Float
hi def link agentpolicyDuration      Number
hi def link agentpolicyString        String
hi def link agentpolicyEscape        SpecialChar
hi def link agentpolicyRegex         String
hi def link agentpolicyRegexDelimiter Special
hi def link agentpolicyRegexEscape   SpecialChar
hi def link agentpolicyRegexClass    Special
hi def link agentpolicyTodo          Todo
hi def link agentpolicyComment       Comment

let b:current_syntax = 'agentpolicy'

let &cpo = s:cpo_save
unlet s:cpo_save
