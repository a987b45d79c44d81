# table.awk: one markdown table from the runs of one scenario (used by bench/compare.sh).
#
# Input, one line per run of a server, tab-separated:
#   NAME  IS_BASE(0|1)  NOTE  KEY=VALUE KEY=VALUE ...
# Variables (awk -v):
#   metric  the key that picks a server's representative run: with several runs (REPS), the
#           run whose metric is the median is shown, and @range gives the metric's min-max
#   base    the server the ratio columns divide by (else the first server marked IS_BASE,
#           else the first server)
#   cols    the columns, separated by ";", each HEADER=SPEC, where SPEC is
#             @server   the name, marked "(base)" and followed by notes in brackets
#             @range    min-max of the metric over the runs ("-" for one run)
#             @runs     the number of runs
#             KEY       the value of KEY in the representative run
#             KEY%base  that value divided by the base server's
#             KEY:mib   a value in kB shown in MiB
function isnum(v) { return v ~ /^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$/ }
function fmt(v) {
    if (v == "" || !isnum(v)) return (v == "" ? "-" : v)
    v += 0
    if (v == int(v)) return sprintf("%d", v)
    if (v >= 100 || v <= -100) return sprintf("%.0f", v)
    if (v >= 10 || v <= -10) return sprintf("%.1f", v)
    return sprintf("%.2f", v)
}
function value(name, key) { return val[name, pick[name], key] }
BEGIN { FS = "\t"; ncols = split(cols, col, ";") }
{
    name = $1
    if (!(name in runs)) order[++n] = name
    r = ++runs[name]
    if ($2 == 1 && first_base == "") first_base = name
    note[name, r] = $3
    m = split($4, kv, " ")
    for (i = 1; i <= m; i++) {
        eq = index(kv[i], "=")
        if (eq > 0) val[name, r, substr(kv[i], 1, eq - 1)] = substr(kv[i], eq + 1)
    }
}
END {
    if (base == "" || !(base in runs)) base = first_base
    if (base == "") base = order[1]
    for (s = 1; s <= n; s++) {
        name = order[s]
        # the runs with a numeric metric, sorted by it (insertion sort: mawk has no asort)
        k = 0
        for (r = 1; r <= runs[name]; r++) {
            v = val[name, r, metric]
            if (!isnum(v)) continue
            j = ++k
            while (j > 1 && sorted_v[j - 1] > v + 0) { sorted_v[j] = sorted_v[j - 1]; sorted_r[j] = sorted_r[j - 1]; j-- }
            sorted_v[j] = v + 0; sorted_r[j] = r
        }
        pick[name] = (k > 0 ? sorted_r[int((k + 1) / 2)] : 1)
        good[name] = k
        span[name] = (k > 1 ? fmt(sorted_v[1]) "-" fmt(sorted_v[k]) : "-")
    }
    line = "|"; rule = "|"
    for (c = 1; c <= ncols; c++) {
        eq = index(col[c], "=")
        head[c] = substr(col[c], 1, eq - 1); spec[c] = substr(col[c], eq + 1)
        line = line " " head[c] " |"
        rule = rule (spec[c] == "@server" ? "---|" : "---:|")
    }
    print line; print rule
    for (s = 1; s <= n; s++) {
        name = order[s]
        line = "|"
        for (c = 1; c <= ncols; c++) {
            sp = spec[c]
            if (sp == "@server") {
                cell = name (name == base ? " (base)" : "")
                nt = note[name, pick[name]]
                if (nt != "") cell = cell " [" nt "]"
            } else if (sp == "@range") {
                cell = span[name]
            } else if (sp == "@runs") {
                cell = good[name] "/" runs[name]
            } else if (sp ~ /%base$/) {
                key = substr(sp, 1, length(sp) - 5)
                a = value(name, key); b = value(base, key)
                cell = (isnum(a) && isnum(b) && b + 0 != 0 ? sprintf("%.2f", a / b) : "-")
            } else if (sp ~ /:mib$/) {
                a = value(name, substr(sp, 1, length(sp) - 4))
                cell = (isnum(a) ? sprintf("%.1f", a / 1024) : "-")
            } else {
                cell = fmt(value(name, sp))
            }
            line = line " " cell " |"
        }
        print line
    }
}
