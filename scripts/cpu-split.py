#!/usr/bin/env python3
"""CPU per component of the machine over a window, in cores (docs/performance.md).

    scripts/cpu-split.py [SECONDS]     # default 10; run it while a benchmark run is under way

Reads utime + stime of every process from /proc twice and groups them by command name:
PostgreSQL's backends, RabbitMQ's VM, k6, nginx, Redis, the service replicas, the harness.
A process that ends inside the window is left out; one that starts inside it counts from its
start. The
last line is the total and the hypervisor's steal time.
"""
import os, sys, time
win = float(sys.argv[1]) if len(sys.argv) > 1 else 10
def groups():
    g = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit(): continue
        try:
            comm = open(f'/proc/{pid}/comm').read().strip()
            st = open(f'/proc/{pid}/stat').read()
        except OSError: continue
        f = st[st.rindex(')')+2:].split()
        ticks = int(f[11]) + int(f[12])
        if comm.startswith('postgres') or comm.startswith('postmaster'): k = 'postgres'
        elif comm.startswith('beam') or comm in ('erl_child_setup','epmd','inet_gethost'): k = 'rabbitmq'
        elif comm == 'k6': k = 'k6'
        elif comm.startswith('nginx'): k = 'nginx'
        elif comm.startswith('redis'): k = 'redis'
        elif comm in ('gateway','inventory','order','payment','reservation'): k = 'services'
        elif comm == 'flashsale': k = 'harness'
        else: k = 'other'
        g[(pid, k)] = ticks
    return g
def steal():
    f = open('/proc/stat').readline().split()
    vals = list(map(int, f[1:]))
    return vals[7], sum(vals)
a = groups(); s0, t0 = steal(); time.sleep(win); b = groups(); s1, t1 = steal()
hz = os.sysconf('SC_CLK_TCK'); out = {}
for key, v in b.items():
    out[key[1]] = out.get(key[1], 0) + (v - a.get(key, 0))
tot = 0
for k in sorted(out, key=lambda k: -out[k]):
    c = out[k] / hz / win; tot += c
    print(f'{k:10s} {c:5.2f}')
print(f'{"total":10s} {tot:5.2f}   steal {100*(s1-s0)/max(1,t1-t0):.1f}%')
