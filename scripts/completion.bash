# SPDX-License-Identifier: Apache-2.0
# bash completion for mse (mse-c); `make install` puts it in
# PREFIX/share/bash-completion/completions/mse.
#
# Everything is read from mse itself, so a new command or option completes
# with no change here: commands from `mse --help`, a command's options from
# `mse CMD --help`, instance names (status, logs, stop, restart, evidence,
# run, test) from `mse list -q`. An option shown as `--opt WORD` in --help
# takes an argument: a directory when WORD is DIR, a file otherwise.

_mse_commands() {
	"$1" --help 2>/dev/null | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p'
}

_mse_options() {
	"$1" "$2" --help 2>/dev/null | grep -oE -- '(^|[ ,(|[])--?[a-zA-Z][a-zA-Z0-9-]*' |
		sed 's/^[ ,(|[]//' | sort -u
}

# The argument word of option $3 of command $2, as --help writes it (DIR, FILE...).
_mse_option_arg() {
	"$1" "$2" --help 2>/dev/null | grep -oE -- "(^|[ ,[])$3 [A-Z][A-Za-z0-9_.:|-]*" | head -n 1 |
		sed 's/.* //'
}

_mse() {
	local mse=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local cmd="" i ci=0 arg positional=0
	COMPREPLY=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; ci=$i; break ;;
		esac
	done
	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "$(_mse_commands "$mse") help --help --version" -- "$cur"))
		return
	fi
	if [[ $cmd == help ]]; then
		((COMP_CWORD == ci + 1)) && COMPREPLY=($(compgen -W "$(_mse_commands "$mse")" -- "$cur"))
		return
	fi
	if [[ $prev == -* ]]; then
		arg=$(_mse_option_arg "$mse" "$cmd" "$prev")
		if [[ -n $arg ]]; then
			compopt -o filenames 2>/dev/null
			case $arg in
			DIR) COMPREPLY=($(compgen -d -- "$cur")) ;;
			*) COMPREPLY=($(compgen -f -- "$cur")) ;;
			esac
			return
		fi
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_mse_options "$mse" "$cmd")" -- "$cur"))
		return
	fi
	# Count the positional words before this one (words that are not options
	# nor an option's argument).
	for ((i = ci + 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) [[ -n $(_mse_option_arg "$mse" "$cmd" "${COMP_WORDS[i]}") ]] && ((i++)) ;;
		*) ((positional++)) ;;
		esac
	done
	case $cmd in
	status | logs | stop | restart | evidence | run | test)
		if ((positional == 0)); then
			COMPREPLY=($(compgen -W "$("$mse" list -q 2>/dev/null)" -- "$cur"))
			return
		fi
		;;
	esac
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _mse mse
