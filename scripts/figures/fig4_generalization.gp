# Fig. 4: generalisation with little data (claim 9): depth 3, 1,600 training images.
load sprintf("%s/style.gp", scriptdir)
B = indir."/bands.csv"
S = indir."/summary.csv"
H = indir."/readout_hist.csv"
set multiplot layout 2,3 title "Fig. 4: generalisation from 1,600 images, 784-100-100-10 (mean -+ sd over seeds)" font ",13"
curve(m, col, t, dt) = sprintf('B using "epoch":"%s_lo":"%s_hi" with filledcurves fc rgb %s fs transparent solid BAND notitle, B using "epoch":"%s_mean" with lines lw 2 dt %d lc rgb %s title "%s"', m, m, col, m, dt, col, t)
three(m) = curve("fa_".m, "C_FA", "FA without noise", 1).", ".curve("fa_noise_".m, "C_NZ", "FA after noise", 1).", ".curve("bp_".m, "C_BP", "BP", 2)
set xlabel "epoch"

set title "(a) training (solid) and test (dashed) loss"
set ylabel "cross-entropy"
set logscale y
eval "plot ".curve("fa_train_loss", "C_FA", "FA without noise", 1).", ".curve("fa_test_loss", "C_FA", "", 2).", ".curve("fa_noise_train_loss", "C_NZ", "FA after noise", 1).", ".curve("fa_noise_test_loss", "C_NZ", "", 2).", ".curve("bp_train_loss", "C_BP", "BP", 1).", ".curve("bp_test_loss", "C_BP", "", 2)
unset logscale y

set title "(b) generalisation gap"
set ylabel "test loss - training loss"
set key top left
eval "plot ".three("gap")

set title "(c) test accuracy"
set ylabel "test accuracy"
set key bottom right
eval "plot ".three("test_acc")

set title "(d) Gram-matrix effective dimensionality, last hidden layer"
set ylabel "effective rank of the neuron-similarity matrix"
set key top right
eval "plot ".three("gram")

set title "(e) readout on test images, before data training"
set xlabel "softmax output"
set ylabel "fraction of outputs"
set logscale y
set format y "10^{%T}"
set arrow 1 from 0.1, graph 0 to 0.1, graph 1 nohead dt 2 lc rgb "black"
plot H using "prob":"init" with steps lw 2 lc rgb C_FA title "untrained net", \
     H using "prob":"after_noise" with steps lw 2 lc rgb C_NZ title "after noise pretraining"
unset logscale y; unset arrow 1; set format y

set title "(f) per seed: gap vs dimensionality at the end"
set xlabel "Gram effective dimensionality after data training"
set ylabel "mean gap over the last 10 epochs"
set key top left
plot S using (strcol(1) eq "fa" ? $4 : NaN):5 with points pt 7 ps 1.2 lc rgb C_FA title "FA without noise", \
     S using (strcol(1) eq "fa_noise" ? $4 : NaN):5 with points pt 7 ps 1.2 lc rgb C_NZ title "FA after noise", \
     S using (strcol(1) eq "bp" ? $4 : NaN):5 with points pt 5 ps 1.2 lc rgb C_BP title "BP"
unset multiplot
