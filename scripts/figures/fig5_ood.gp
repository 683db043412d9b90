# Fig. 5: out-of-distribution robustness of nets trained on MNIST-10k (claim 10).
load sprintf("%s/style.gp", scriptdir)
R = indir."/bars.csv"
set multiplot layout 2,2 title "Fig. 5: trained on MNIST-10k, tested on transformed digits and other handwriting (mean -+ sd over seeds)" font ",13"
curve(f, k, col, t, dt) = sprintf('"%s" using "magnitude":"%s_lo":"%s_hi" with filledcurves fc rgb %s fs transparent solid BAND notitle, "%s" using "magnitude":"%s_mean" with linespoints pt 7 ps 0.6 lw 2 dt %d lc rgb %s title "%s"', f, k, k, col, f, k, dt, col, t)
three(f) = curve(f, "fa", "C_FA", "FA without noise", 1).", ".curve(f, "fa_noise", "C_NZ", "FA after noise", 1).", ".curve(f, "bp", "C_BP", "BP", 2)
set ylabel "test accuracy"
set key bottom left

F = indir."/bands_translate.csv"
set title "(a) translated test digits (mean of 4 directions)"
set xlabel "shift (pixels)"
eval "plot ".three(F)

F = indir."/bands_rotate.csv"
set title "(b) rotated test digits (mean of both senses)"
set xlabel "rotation (degrees)"
eval "plot ".three(F)

F = indir."/bands_scale.csv"
set title "(c) scaled test digits"
set xlabel "zoom factor about the centre"
set key bottom center
set arrow 1 from 1, graph 0 to 1, graph 1 nohead dt 3 lc rgb "black"
eval "plot ".three(F)
unset arrow 1

set title "(d) clean test set and another digit set (scikit-learn digits for USPS)"
set xlabel ""
set style fill solid 0.6 noborder
set style data histograms
set style histogram errorbars gap 1 lw 1
set errorbars lc rgb "black"
set yrange [0:1]
set key top right
plot R using "fa_mean":"fa_sd":xticlabels(2) lc rgb C_FA title "FA without noise", \
     R using "fa_noise_mean":"fa_noise_sd" lc rgb C_NZ title "FA after noise", \
     R using "bp_mean":"bp_sd" lc rgb C_BP title "BP"
unset multiplot
