# Fig. 6: the meta-loss during noise pretraining (claim 11).
load sprintf("%s/style.gp", scriptdir)
set terminal pngcairo size 1500,520 font "DejaVu Sans,11" enhanced
set output outfile
B = indir."/bands.csv"
hdr = system(sprintf("head -1 '%s'", B))
has_bp = strstrt(hdr, "bp_meta_mean") > 0
has(t) = strstrt(hdr, "fa_".t."_mean") > 0
curve(k, col, t, dt) = sprintf('B using "step":"%s_lo":"%s_hi" with filledcurves fc rgb %s fs transparent solid BAND notitle, B using "step":"%s_mean" with linespoints pt 7 ps 0.5 lw 2 dt %d lc rgb %s title "%s"', k, k, col, k, dt, col, t)
set multiplot layout 1,2 title "Fig. 6: meta-loss over tasks during noise pretraining (mean -+ sd over seeds)" font ",13"
set xlabel "noise pretraining step (checkpoint)"

set title "(a) meta-loss: sum of the tasks' test losses after a short adaptation"
set ylabel "meta-loss"
cmd = "plot ".curve("fa_meta", "C_NZ", "FA on noise", 1)
if (has_bp) { cmd = cmd.", ".curve("bp_meta", "C_BP", "BP on noise (control)", 2) }
eval cmd

set title "(b) per task (FA on noise solid, BP control dashed)"
set ylabel "test loss after adaptation"
set key top right
cols = "C_FA C_NZ C_X"
cmd = "plot "
i = 0
do for [t in "mnist fashion digits"] {
    if (has(t)) {
        i = i + 1
        col = word(cols, i)
        cmd = cmd.(i > 1 ? ", " : "").curve("fa_".t, col, t eq "mnist" ? "MNIST-10k" : t eq "fashion" ? "Fashion-MNIST" : "scikit-learn digits", 1)
        if (has_bp) { cmd = cmd.sprintf(', B using "step":"bp_%s_mean" with lines lw 1.5 dt 2 lc rgb %s notitle', t, col) }
    }
}
eval cmd
unset multiplot
