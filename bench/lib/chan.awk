# chan.awk: the channel table of bench/compare.sh. Reads the RESULT lines of Go's chanbench
# (the rows and the ratio base), then those of the other programs, each file preceded by a
# line "PROGRAM <label> <kind>": kind "rust" is bench/peers/may's rust-chanbench, whose lines
# name their Go benchmark with base= (and base_x=k when value*k compares with Go's); kind
# "same" is a program that prints Go's benchmark names (goway's examples/chanbench.rs).
function isnum(v) { return v ~ /^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$/ }
function field(key,    i, kv) {
    for (i = 5; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) return kv[2] }
    return ""
}
function add_program(label) { if (!(label in seen)) { seen[label] = 1; prog[++np] = label } }
$1 == "PROGRAM" { label = $2; kind = $3; if (kind != "go") { if (kind == "rust") { add_program("may"); add_program("crossbeam") } else add_program(label) }; next }
$1 != "RESULT" { next }
kind == "go" { row[++nr] = $2; unit[$2] = $4; gov[$2] = $3; gorange[$2] = field("min") "-" field("max"); next }
kind == "rust" {
    b = field("base"); x = field("base_x"); if (x == "") x = 1
    grp = (index($2, "crossbeam_") == 1 ? "crossbeam" : "may")
    v[grp, b] = $3; scale[grp, b] = x; nm[grp, b] = $2
    next
}
{ v[label, $2] = $3; scale[label, $2] = 1; nm[label, $2] = $2 }
END {
    head = "| benchmark | unit | go (median) | go min-max |"; rule = "|---|---|---:|---:|"
    for (p = 1; p <= np; p++) { head = head " " prog[p] " | " prog[p] " / go |"; rule = rule "---:|---:|" }
    print head; print rule
    for (r = 1; r <= nr; r++) {
        b = row[r]
        line = "| " b " | " unit[b] " | " gov[b] " | " gorange[b] " |"
        for (p = 1; p <= np; p++) {
            g = prog[p]
            if ((g, b) in v) {
                cell = v[g, b]
                if (nm[g, b] != b) cell = cell " (" nm[g, b] ")"
                ratio = (isnum(gov[b]) && gov[b] + 0 != 0 ? sprintf("%.2f", v[g, b] * scale[g, b] / gov[b]) : "-")
            } else { cell = "-"; ratio = "-" }
            line = line " " cell " | " ratio " |"
        }
        print line
    }
    print ""
    print "Time per operation (or per run for spawn_join): lower is better. A value shown with its own name is a different workload paired with Go's (see bench/README.md); crossbeam_spawn_join_10k is scaled x10 in its ratio."
}
