package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// The bash and zsh scripts are urfave/cli v2's own (autocomplete/ in its
// repository) with the program name filled in: they ask forgelab itself
// for the words (--generate-bash-completion), so they follow new commands
// and flags without being regenerated.
const bashCompletion = `# bash completion for forgelab: source <(forgelab completion bash)
_forgelab_init_completion() {
  COMPREPLY=()
  _get_comp_words_by_ref "$@" cur prev words cword
}

_forgelab_complete() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur opts base words
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    if declare -F _init_completion >/dev/null 2>&1; then
      _init_completion -n "=:" || return
    else
      _forgelab_init_completion -n "=:" || return
    fi
    words=("${words[@]:0:$cword}")
    if [[ "$cur" == "-"* ]]; then
      requestComp="${words[*]} ${cur} --generate-bash-completion"
    else
      requestComp="${words[*]} --generate-bash-completion"
    fi
    opts=$(eval "${requestComp}" 2>/dev/null)
    COMPREPLY=($(compgen -W "${opts}" -- ${cur}))
    return 0
  fi
}

complete -o bashdefault -o default -o nospace -F _forgelab_complete forgelab
`

const zshCompletion = `#compdef forgelab
# zsh completion for forgelab: source <(forgelab completion zsh)

_forgelab_complete() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

compdef _forgelab_complete forgelab
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: source <(forgelab completion bash)",
		ArgsUsage: "bash|zsh|fish",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				_, err := fmt.Fprint(os.Stdout, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(os.Stdout, zshCompletion)
				return err
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(os.Stdout, s)
				return err
			}
			return fmt.Errorf("usage: forgelab completion bash|zsh|fish (then e.g. `source <(forgelab completion bash)`, or save it to /etc/bash_completion.d/forgelab)")
		},
	}
}
