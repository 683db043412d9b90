# style.gp - shared look of the paper figures (loaded by every fig*.gp).
# Colours: FA without noise red, FA after noise blue, BP grey; bands are mean -+ sd over seeds.
set datafile separator ","
set datafile columnheaders
set terminal pngcairo size 1500,880 font "DejaVu Sans,11" enhanced
set output outfile
set grid back lc rgb "#dddddd"
set border 3
set tics nomirror
set key top right samplen 2 spacing 1.1 box opaque
C_FA = "#d62728"
C_NZ = "#1f77b4"
C_BP = "#555555"
C_X  = "#2ca02c"
BAND = 0.22
