# Miss ratio vs cache size, one line per policy (callcache sim).
# Re-render with: gnuplot sim-web07.gp  (in this directory)
set title "callcache sim: web07.trace.xz\n76,118 requests, 20,484 distinct keys" noenhanced
set xlabel "cache size (entries, log scale)"
set ylabel "miss ratio"
set logscale x
set grid
set key top right noenhanced
set yrange [0:*]
set xrange [16.000:5121.250]
set terminal svg size 800,500 dynamic font "sans,12" background rgb "white"
set output "sim-web07.svg"
plot "sim-web07.dat" using 1:3 with linespoints title "lru" lw 2 pt 7 lc 1, \
     "sim-web07.dat" using 1:4 with linespoints title "s3fifo" lw 2 pt 7 lc 2, \
     "sim-web07.dat" using 1:5 with linespoints title "wtinylfu" lw 2 pt 7 lc 3, \
     "sim-web07.dat" using 1:6 with linespoints title "adaptive (default)" lw 2 pt 7 lc 4, \
     "sim-web07.dat" using 1:7 with linespoints title "OPT (ref, offline)" lw 1 dt 2 pt 6 lc rgb "#444444", \
     "sim-web07.dat" using 1:8 with linespoints title "FIFO (ref)" lw 1 dt 2 pt 6 lc rgb "#999999"
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 800,500 font "sans,10"
  set output "sim-web07.png"
  replot
}
set output
