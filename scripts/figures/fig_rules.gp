# The learning-rules study (examples/paper/rules.c, docs/rules.md): test-accuracy AUC of every
# rule without and with noise pretraining, per dataset and depth (mean -+ sd over paired seeds).
# summary.csv holds 8 rows (one per rule) per (dataset, depth), datasets outermost.
load sprintf("%s/style.gp", scriptdir)
S = indir."/summary.csv"
set multiplot layout 2,2 title "Does noise pretraining help every rule? Test-accuracy AUC over data training (recipes chosen on validation)" font ",13"
set style fill solid 0.6 noborder
set style data histograms
set style histogram errorbars gap 1 lw 1
set errorbars lc rgb "black"
set yrange [0:1.15]
set ytics 0, 0.2, 1
set ylabel "test-accuracy AUC"
set key top center horizontal
panel(k) = sprintf("every ::%d::%d", 8 * k, 8 * k + 7)
do for [k = 0:3] {
    set title sprintf("(%s) %s, %s weight layers", word("a b c d", k + 1), \
        system(sprintf("awk -F, 'NR == %d {print $1}' %s", 8 * k + 2, S)), \
        system(sprintf("awk -F, 'NR == %d {print $2}' %s", 8 * k + 2, S)))
    eval sprintf("plot S %s using 'auc_none':'auc_none_sd':xticlabels(3) lc rgb C_FA title 'without noise', S %s using 'auc_noise':'auc_noise_sd' lc rgb C_NZ title 'after noise'", panel(k), panel(k))
}
unset multiplot
