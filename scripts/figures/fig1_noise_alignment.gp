# Fig. 1: random-noise pretraining under FA (claims 1-4).
# gnuplot -e "scriptdir='scripts/figures'; indir='out/paper/noise_alignment'; outfile='fig1.png'" fig1_noise_alignment.gp
load sprintf("%s/style.gp", scriptdir)
B = indir."/bands.csv"
U = indir."/unit_angles.csv"
H = indir."/readout_hist.csv"
has_bp = system(sprintf("head -1 '%s' | grep -c bp_loss_mean", B)) + 0
# The BP control's curves as plot-command fragments, empty when the run had --no-bp-control.
band(m) = has_bp ? sprintf(', B using "step":"bp_%s_lo":"bp_%s_hi" with filledcurves fc rgb C_BP fs transparent solid BAND notitle', m, m) : ""
line(m, t) = has_bp ? sprintf(', B using "step":"bp_%s_mean" with lines lw 2 dt 2 lc rgb C_BP title "%s"', m, t) : ""
line2(m, t) = has_bp ? sprintf(', B using "step":"bp_%s_mean" axes x1y2 with lines lw 2 dt 3 lc rgb C_X title "%s"', m, t) : ""
bp_loss = band("loss").line("loss", "BP (control)")
bp_angle = band("angle").line("angle", "BP (control)")
bp_erank = line("erank_last", "BP, W_2").line2("erank_first", "BP, W_1 (right axis)")
bp_maxprob = band("maxprob").line("maxprob", "BP (control)")
bp_hist = has_bp ? ', H using "prob":"bp_end" with steps lw 2 dt 2 lc rgb C_BP title "BP net after noise"' : ""

set multiplot layout 2,3 title "Fig. 1: feedback alignment on random noise (784-100-10, mean -+ sd over seeds)" font ",13"

set title "(a) training loss on noise"
set xlabel "noise training step"
set ylabel "cross-entropy"
set yrange [2.2:*]
set arrow 1 from graph 0, first log(10) to graph 1, first log(10) nohead dt 2 lc rgb "black"
set label 1 "ln 10" at graph 0.02, first log(10) offset 0,0.7
plot B using "step":"fa_loss_lo":"fa_loss_hi" with filledcurves fc rgb C_NZ fs transparent solid BAND notitle, \
     B using "step":"fa_loss_mean" with lines lw 2 lc rgb C_NZ title "FA" @bp_loss
unset arrow 1; unset label 1; unset yrange

set title "(b) alignment of the last layer, W vs B"
set ylabel "mean per-unit angle (deg)"
set arrow 1 from graph 0, first 90 to graph 1, first 90 nohead dt 2 lc rgb "black"
plot B using "step":"fa_angle_lo":"fa_angle_hi" with filledcurves fc rgb C_NZ fs transparent solid BAND notitle, \
     B using "step":"fa_angle_mean" with lines lw 2 lc rgb C_NZ title "FA" @bp_angle
unset arrow 1

set title "(c) per-unit angles of the FA nets, all seeds"
set xlabel "angle between a unit's W column and B column (deg)"
set ylabel "fraction of units"
bw = 4.0
bin(x) = bw * floor(x / bw) + bw / 2
stats U using (strcol(1) eq "fa" ? $4 : NaN) nooutput
N = STATS_records
set style fill transparent solid 0.45 noborder
set boxwidth bw
set arrow 1 from 90, graph 0 to 90, graph 1 nohead dt 2 lc rgb "black"
plot U using (strcol(1) eq "fa" ? bin($4) : NaN):(1.0 / N) smooth frequency with boxes fc rgb C_FA title "before noise", \
     U using (strcol(1) eq "fa" ? bin($5) : NaN):(1.0 / N) smooth frequency with boxes fc rgb C_NZ title "after noise"
set style fill solid 1.0
unset arrow 1

set title "(d) effective rank of the forward weights"
set xlabel "noise training step"
set ylabel "effective rank of W_2 (10x100)"
set y2label "effective rank of W_1 (100x784)"
set y2tics
set key bottom left
plot B using "step":"fa_erank_last_lo":"fa_erank_last_hi" with filledcurves fc rgb C_NZ fs transparent solid BAND notitle, \
     B using "step":"fa_erank_last_mean" with lines lw 2 lc rgb C_NZ title "FA, W_2", \
     B using "step":"fa_erank_first_mean" axes x1y2 with lines lw 2 lc rgb C_X title "FA, W_1 (right axis)" @bp_erank
unset y2tics; unset y2label
set key top right

set title "(e) readout on fresh noise"
set ylabel "mean largest softmax probability"
set yrange [0:*]
set arrow 1 from graph 0, first 0.1 to graph 1, first 0.1 nohead dt 2 lc rgb "black"
set label 1 "chance 1/10" at graph 0.02, first 0.1 offset 0,0.7
plot B using "step":"fa_maxprob_lo":"fa_maxprob_hi" with filledcurves fc rgb C_NZ fs transparent solid BAND notitle, \
     B using "step":"fa_maxprob_mean" with lines lw 2 lc rgb C_NZ title "FA" @bp_maxprob
unset arrow 1; unset label 1; unset yrange

set title "(f) distribution of readout probabilities (fresh noise)"
set xlabel "softmax output"
set ylabel "fraction of outputs"
set logscale y
set format y "10^{%T}"
set arrow 1 from 0.1, graph 0 to 0.1, graph 1 nohead dt 2 lc rgb "black"
plot H using "prob":"fa_start" with steps lw 2 lc rgb C_FA title "before noise", \
     H using "prob":"fa_end" with steps lw 2 lc rgb C_NZ title "FA net after noise" @bp_hist
unset logscale y; unset arrow 1; set format y
unset multiplot
