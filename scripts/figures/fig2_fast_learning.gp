# Fig. 2 / Table 1: FA without noise, FA after noise and BP during data training (claims 5, 6, 8).
# Panels for a dataset or depth are drawn only if its CSV is there (the demo has Fashion-MNIST,
# depth 2 only).
load sprintf("%s/style.gp", scriptdir)
fexists(f) = system(sprintf("test -f '%s' && echo 1 || echo 0", f)) + 0
F2 = indir."/bands_fashion_d2.csv"
M2 = indir."/bands_mnist_d2.csv"
DF = indir."/depth_fashion.csv"
DM = indir."/depth_mnist.csv"
T = indir."/table.csv"
hf = fexists(F2); hm = fexists(M2)
ndepth = fexists(DF) ? system(sprintf("tail -n +2 '%s' | wc -l", DF)) + 0 : 0
full = (hm && ndepth > 1)
if (full) { set multiplot layout 2,3 title "Fig. 2: noise pretraining speeds up feedback alignment (mean -+ sd over seeds)" font ",13" } \
else { set terminal pngcairo size 1500,480 font "DejaVu Sans,11"; set output outfile; \
       set multiplot layout 1,3 title "Fig. 2 (demo): noise pretraining speeds up feedback alignment, Fashion-MNIST (mean -+ sd over seeds)" font ",13" }

curve(file, name) = sprintf("%s", file)
set xlabel "epoch"
set ylabel "test accuracy"
set key bottom right
do for [ds in "fashion mnist"] {
    f = indir."/bands_".ds."_d2.csv"
    if (fexists(f)) {
        set title sprintf("(%s) %s, 784-100-10", ds eq "fashion" ? "a" : "b", ds eq "fashion" ? "Fashion-MNIST" : "MNIST-10k")
        plot f using "epoch":"fa_acc_lo":"fa_acc_hi" with filledcurves fc rgb C_FA fs transparent solid BAND notitle, \
             "" using "epoch":"fa_acc_mean" with linespoints pt 7 ps 0.5 lw 2 lc rgb C_FA title "FA without noise", \
             "" using "epoch":"fa_noise_acc_lo":"fa_noise_acc_hi" with filledcurves fc rgb C_NZ fs transparent solid BAND notitle, \
             "" using "epoch":"fa_noise_acc_mean" with linespoints pt 7 ps 0.5 lw 2 lc rgb C_NZ title "FA after noise", \
             "" using "epoch":"bp_acc_lo":"bp_acc_hi" with filledcurves fc rgb C_BP fs transparent solid BAND notitle, \
             "" using "epoch":"bp_acc_mean" with linespoints pt 7 ps 0.5 lw 2 dt 2 lc rgb C_BP title "BP"
    }
}

if (!full) {
    # Demo layout: AUC and final accuracy per condition, as bars with -+ sd.
    set title "(b) speed and end point of learning, 784-100-10"
    set ylabel "test accuracy"
    set xlabel ""
    set style fill solid 0.6 noborder
    set boxwidth 0.38
    set xrange [-0.6:2.6]
    set yrange [0.5:0.9]
    set xtics ("FA without noise" 0, "FA after noise" 1, "BP" 2) scale 0
    set key top left horizontal
    cx(c) = c eq "fa" ? 0 : c eq "fa_noise" ? 1 : 2
    plot T using ($2 == 2 && strcol(1) eq "fashion" ? cx(strcol(3)) - 0.2 : NaN):"auc_mean":"auc_sd" with boxerrorbars fc rgb C_X title "AUC", \
         T using ($2 == 2 && strcol(1) eq "fashion" ? cx(strcol(3)) + 0.2 : NaN):"final_acc_mean":"final_acc_sd" with boxerrorbars fc rgb C_NZ title "final accuracy"
    unset xtics; set xtics; unset xrange; unset yrange
    set style fill solid 1.0
}

# Angle of the last layer before and after data training, depth 2, per dataset and condition.
set title sprintf("(%s) last-layer alignment, 784-100-10", full ? "c" : "c")
set ylabel "mean per-unit angle W vs B (deg)"
set xlabel ""
set style fill solid 0.6 noborder
set boxwidth 0.38
set yrange [0:118]
if (hm) { set xrange [-0.6:6.6] } else { set xrange [-0.6:2.6] }
set key top center horizontal
unset grid
set border 3 lc rgb "black" dt solid
cx(c) = c eq "fa" ? 0 : c eq "fa_noise" ? 1 : 2
xpos(d, c) = cx(c) + (d eq "mnist" ? 4 : 0)
if (hm) { set xtics ("FA" 0, "FA+noise" 1, "BP" 2, "FA" 4, "FA+noise" 5, "BP" 6) scale 0 } \
else { set xtics ("FA without noise" 0, "FA after noise" 1, "BP" 2) scale 0 }
set label 11 "Fashion-MNIST" at 1, 99 center
if (hm) { set label 12 "MNIST-10k" at 5, 99 center }
plot T using ($2 == 2 ? xpos(strcol(1), strcol(3)) - 0.2 : NaN):"angle_before_mean" with boxes fc rgb "#aaaaaa" title "before data", \
     "" using ($2 == 2 ? xpos(strcol(1), strcol(3)) + 0.2 : NaN):"angle_after_mean":"angle_after_sd" with boxerrorbars fc rgb C_NZ title "after data (-+ sd)"
unset label 11; unset label 12; unset xtics; set xtics; unset xrange; unset yrange
set grid back lc rgb "#dddddd"
set style fill solid 1.0

if (full) {
    set xlabel "weight layers (width 100)"
    set xtics 1
    set xrange [1.7:*]
    set key bottom left font ",10"
    set title "(d) area under the test-accuracy curve\n{/*0.85 solid: Fashion-MNIST, dashed: MNIST-10k}"
    set ylabel "AUC (mean test accuracy over training)"
    plot DF using "depth":"fa_auc_mean":"fa_auc_sd" with yerrorlines pt 7 lw 2 lc rgb C_FA title "FA", \
         "" using "depth":"fa_noise_auc_mean":"fa_noise_auc_sd" with yerrorlines pt 7 lw 2 lc rgb C_NZ title "FA+noise", \
         "" using "depth":"bp_auc_mean":"bp_auc_sd" with yerrorlines pt 7 lw 2 lc rgb C_BP title "BP", \
         DM using "depth":"fa_auc_mean":"fa_auc_sd" with yerrorlines pt 5 dt 2 lw 2 lc rgb C_FA notitle, \
         "" using "depth":"fa_noise_auc_mean":"fa_noise_auc_sd" with yerrorlines pt 5 dt 2 lw 2 lc rgb C_NZ notitle, \
         "" using "depth":"bp_auc_mean":"bp_auc_sd" with yerrorlines pt 5 dt 2 lw 2 lc rgb C_BP notitle
    set title "(e) final test accuracy (Table 1)\n{/*0.85 solid: Fashion-MNIST, dashed: MNIST-10k}"
    set ylabel "test accuracy after the last epoch"
    plot DF using "depth":"fa_acc_mean":"fa_acc_sd" with yerrorlines pt 7 lw 2 lc rgb C_FA title "FA", \
         "" using "depth":"fa_noise_acc_mean":"fa_noise_acc_sd" with yerrorlines pt 7 lw 2 lc rgb C_NZ title "FA+noise", \
         "" using "depth":"bp_acc_mean":"bp_acc_sd" with yerrorlines pt 7 lw 2 lc rgb C_BP title "BP", \
         DM using "depth":"fa_acc_mean":"fa_acc_sd" with yerrorlines pt 5 dt 2 lw 2 lc rgb C_FA notitle, \
         "" using "depth":"fa_noise_acc_mean":"fa_noise_acc_sd" with yerrorlines pt 5 dt 2 lw 2 lc rgb C_NZ notitle, \
         "" using "depth":"bp_acc_mean":"bp_acc_sd" with yerrorlines pt 5 dt 2 lw 2 lc rgb C_BP notitle
    set title "(f) share of the FA-to-BP gap closed by noise"
    set ylabel "(FA+noise - FA) / (BP - FA)  (%)"
    set key bottom left
    gap(a, n, b) = 100.0 * (n - a) / (b - a)
    # Reference lines as clipped curves (arrows outside the y range would cross other panels).
    plot 0 with lines lc rgb "black" notitle, 100 with lines dt 2 lc rgb "black" notitle, \
         DF using "depth":(gap(column("fa_auc_mean"), column("fa_noise_auc_mean"), column("bp_auc_mean"))) with linespoints pt 7 lw 2 lc rgb C_NZ title "Fashion, AUC", \
         "" using "depth":(gap(column("fa_acc_mean"), column("fa_noise_acc_mean"), column("bp_acc_mean"))) with linespoints pt 6 lw 2 dt 3 lc rgb C_NZ title "Fashion, final acc.", \
         DM using "depth":(gap(column("fa_auc_mean"), column("fa_noise_auc_mean"), column("bp_auc_mean"))) with linespoints pt 5 lw 2 lc rgb C_X title "MNIST, AUC", \
         "" using "depth":(gap(column("fa_acc_mean"), column("fa_noise_acc_mean"), column("bp_acc_mean"))) with linespoints pt 4 lw 2 dt 3 lc rgb C_X title "MNIST, final acc."
}
unset multiplot
