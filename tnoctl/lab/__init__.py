"""The local lab: five throw-away Debian hosts with real systemd and real SSH on this machine.

Layout (one job per module):
  topology.py  which hosts/tenants the lab has (read from the lab inventory)
  base.py      the cached debootstrap base image (tarball keyed by the recipe hash)
  net.py       bridge tnobr0, one network namespace + veth per host
  procs.py     PID-tracked detached processes (PID + /proc start time against PID reuse)
  aptproxy.py  apt-cacher-ng on the bridge address, plus the local apt repo's HTTP server
  sshfiles.py  lab key, known_hosts (from the hosts' own key files), ssh_config
  etchosts.py  /etc/hosts content of every lab host (pure)
  hosts.py     start/stop one host (overlayfs + systemd-nspawn in its netns)
  boot.py      pre-boot helper run inside the host's private mount namespace, then execs nspawn
  lab.py       `Lab`: up/down/status/restart_host orchestration
  cmd.py       running commands (argv, no shell) and timed progress lines on stderr
"""
