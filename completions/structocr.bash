_structocr_completion() {
    local line
    COMPREPLY=()
    case ${COMP_WORDS[COMP_CWORD-1]} in
        --api-key-file|--keys-file|--ca-bundle|--fixtures)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "${COMP_WORDS[COMP_CWORD]}")
            return 0 ;;
    esac
    while IFS= read -r line; do
        [[ -n $line ]] && COMPREPLY+=("$line")
    done < <(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD="$COMP_CWORD" \
        _STRUCTOCR_COMPLETE=complete_bash "$1")
    return 0
}

complete -F _structocr_completion structocr
