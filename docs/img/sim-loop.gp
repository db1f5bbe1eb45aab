# Miss ratio vs cache size, one line per policy (callcache sim).
# Re-render with: gnuplot sim-loop.gp  (in this directory)
set title "callcache sim: loop(keys=10000, requests=1000000)\n1,000,000 requests, 10,000 distinct keys" noenhanced
set xlabel "cache size (entries, log scale)"
set ylabel "miss ratio"
set logscale x
set grid
set key top right noenhanced
set yrange [0:*]
set xrange [8.000:2500.000]
set terminal svg size 800,500 dynamic font "sans,12" background rgb "white"
set output "sim-loop.svg"
plot "sim-loop.dat" using 1:3 with linespoints title "lru" lw 2 pt 7 lc 1, \
     "sim-loop.dat" using 1:4 with linespoints title "s3fifo" lw 2 pt 7 lc 2, \
     "sim-loop.dat" using 1:5 with linespoints title "wtinylfu" lw 2 pt 7 lc 3, \
     "sim-loop.dat" using 1:6 with linespoints title "adaptive (default)" lw 2 pt 7 lc 4, \
     "sim-loop.dat" using 1:7 with linespoints title "OPT (ref, offline)" lw 1 dt 2 pt 6 lc rgb "#444444", \
     "sim-loop.dat" using 1:8 with linespoints title "FIFO (ref)" lw 1 dt 2 pt 6 lc rgb "#999999"
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 800,500 font "sans,10"
  set output "sim-loop.png"
  replot
}
set output
