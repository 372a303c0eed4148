from . import mango_bench_event
