# Fig. 2f-g: the order of noise and data (claim 7). x = phases done: each phase is stretched to
# one unit whatever its length (noise: --noise-steps steps; data: --epochs epochs).
load sprintf("%s/style.gp", scriptdir)
B = indir."/bands.csv"
P = indir."/phase_bars.csv"
set multiplot layout 2,2 title "Fig. 2f-g: order of noise and data under FA (last layer; mean -+ sd over seeds)" font ",13"
set xtics ("start" 0, "end of phase 1" 1, "end of phase 2" 2)
set xrange [0:2]
set arrow 1 from 1, graph 0 to 1, graph 1 nohead dt 3 lc rgb "black"
set xlabel "training phases"

# Data only is drawn last and dashed: in phase 1 it is the same run as "data, then noise".
tr(k, m, col, t) = sprintf('B using "phases":"%s_%s_lo":"%s_%s_hi" with filledcurves fc rgb %s fs transparent solid BAND notitle, B using "phases":"%s_%s_mean" with lines lw %s dt %s lc rgb %s title "%s"', k, m, k, m, col, k, m, k eq "data" ? "3" : "2", k eq "data" ? "2" : "1", col, t)
set title "(a) alignment: angle between W and B"
set ylabel "mean per-unit angle (deg)"
cmd = "plot ".tr("noise_data", "angle", "C_NZ", "noise, then data").", ".tr("data_noise", "angle", "C_X", "data, then noise").", ".tr("data", "angle", "C_FA", "data only")
eval cmd

set title "(b) distance between W and B"
set ylabel "||W - B||_F"
cmd = "plot ".tr("noise_data", "dist", "C_NZ", "noise, then data").", ".tr("data_noise", "dist", "C_X", "data, then noise").", ".tr("data", "dist", "C_FA", "data only")
eval cmd

set title "(c) test accuracy"
set ylabel "test accuracy"
set key bottom right
cmd = "plot ".tr("noise_data", "acc", "C_NZ", "noise, then data").", ".tr("data_noise", "acc", "C_X", "data, then noise").", ".tr("data", "acc", "C_FA", "data only")
eval cmd
unset arrow 1; unset xrange

set title "(d) angle after each phase"
set ylabel "mean per-unit angle (deg)"
set xlabel ""
set style fill solid 0.6 noborder
set boxwidth 0.7
set yrange [0:100]
set key off
colour(c) = c eq "data" ? 0xd62728 : c eq "noise_data" ? 0x1f77b4 : 0x2ca02c
short(c) = c eq "data" ? "data only" : c eq "noise_data" ? "noise, data" : "data, noise"
unset xtics
set xtics rotate by 30 right font ",9" scale 0
set xrange [-0.6:5.6]
set arrow 1 from graph 0, first 90 to graph 1, first 90 nohead dt 2 lc rgb "black"
plot P using 1:"angle_mean":"angle_sd":(strcol(3) eq "init" ? 0x888888 : colour(strcol(2))):xticlabels(strcol(3) eq "init" ? "initial" : short(strcol(2)).": after ".strcol(3)) with boxerrorbars lc rgb variable
unset arrow 1
unset multiplot
