_structocr_completion() {
    local line
    COMPREPLY=()
    while IFS= read -r line; do
        [[ -n $line ]] && COMPREPLY+=("$line")
    done < <(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD="$COMP_CWORD" \
        _STRUCTOCR_COMPLETE=complete_bash "$1")
    return 0
}

complete -o default -F _structocr_completion structocr
