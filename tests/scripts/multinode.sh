#!/bin/bash
# Several "nodes" on one machine: network namespaces joined by a bridge, and an
# mpirun that places ranks on them and talks TCP only (docs/operations.md,
# "Across nodes"). Sourced by the tests; needs root and iproute2.
#
#   nodes_up N        create N namespaces ("nodes"); returns 77 if impossible
#   nodes_mpirun HOSTS -np P CMD...   mpirun with ranks placed by HOSTS
#                     (for example "1:2,2:1,3:1": node 1 two ranks, ...),
#                     killed after $NODES_TIMEOUT seconds (120): a hang fails
#   nodes_down        remove everything nodes_up created (also on exit)
#
# Names and the subnet derive from the shell's pid, so that tests running at the
# same time do not collide. The file system is shared by every node, as a
# parallel file system is; only the network is separate.

nodes_tag=$(( $$ % 200 + 20 ))
nodes_bridge=stbr$nodes_tag
nodes_net=10.214.$nodes_tag
nodes_count=0
nodes_agent=

nodes_down() {
  local i
  for ((i = 1; i <= nodes_count; i++)); do ip netns del "stn${nodes_tag}_$i" 2>/dev/null; done
  ip link del "$nodes_bridge" 2>/dev/null
  [ -n "$nodes_agent" ] && rm -f "$nodes_agent"
  nodes_count=0
  return 0
}

nodes_up() {  # N
  local n=$1 i ns
  [ "$(id -u)" = 0 ] || { echo "SKIP: network namespaces need root"; return 77; }
  command -v ip >/dev/null || { echo "SKIP: iproute2 (ip) is not installed"; return 77; }
  ip link add "$nodes_bridge" type bridge 2>/dev/null ||
    { echo "SKIP: cannot create a bridge (no CAP_NET_ADMIN here)"; return 77; }
  ip addr add "$nodes_net.1/24" dev "$nodes_bridge" && ip link set "$nodes_bridge" up || return 1
  for ((i = 1; i <= n; i++)); do
    ns=stn${nodes_tag}_$i
    ip netns add "$ns" || { nodes_down; echo "SKIP: cannot create network namespaces"; return 77; }
    nodes_count=$i
    ip link add "v${nodes_tag}h$i" type veth peer name "v${nodes_tag}n$i" &&
      ip link set "v${nodes_tag}h$i" master "$nodes_bridge" up &&
      ip link set "v${nodes_tag}n$i" netns "$ns" &&
      ip -n "$ns" link set "v${nodes_tag}n$i" name eth0 &&
      ip -n "$ns" addr add "$nodes_net.$((i + 1))/24" dev eth0 &&
      ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up || { nodes_down; return 1; }
  done
  # The rsh agent: mpirun calls it as AGENT HOST COMMAND...; HOST is a node's
  # address, and the daemon starts inside that node's namespace.
  nodes_agent=$(mktemp) # in $TMPDIR, else /tmp
  cat > "$nodes_agent" <<AGENT
#!/bin/sh
host=\$1; shift
case \$host in
  $nodes_net.*) i=\${host##*.}
    # Its own network and its own host name: Open MPI tells nodes apart by name.
    exec ip netns exec "stn${nodes_tag}_\$((i - 1))" unshare --uts /bin/sh -c \
      "hostname strata-node\$((i - 1)) && exec \$*" ;;
  *) echo "rsh agent: unknown node \$host" >&2; exit 1 ;;
esac
AGENT
  chmod +x "$nodes_agent"
  trap nodes_down EXIT
  # Every node reaches every other through the bridge (a ping proves the wiring).
  ip netns exec "stn${nodes_tag}_1" ping -c 1 -W 2 "$nodes_net.$((n + 1))" >/dev/null 2>&1 ||
    ip netns exec "stn${nodes_tag}_1" bash -c "exec 3<>/dev/tcp/$nodes_net.1/1" 2>/dev/null || true
  return 0
}

nodes_hosts() {  # "1:2,2:1" -> "10.214.T.2:2,10.214.T.3:1"
  local out= spec node slots
  for spec in ${1//,/ }; do
    node=${spec%%:*} slots=${spec#*:}
    out+="${out:+,}$nodes_net.$((node + 1)):$slots"
  done
  echo "$out"
}

# Two settings the "nodes" need because they share this machine's cores:
# mpi_yield_when_idle, since each node believes its ranks have a core each and
# polls without yielding, which starves the kernel's packet processing (a round
# trip took 6-10 ms instead of 35 us); rtc_hwloc_vmhole none, since the daemons
# otherwise map the topology into a shared-memory hole and one of them
# sometimes died there (SIGSEGV in hwloc_shmem_topology_write). Neither is
# needed on a real cluster.
nodes_mpirun() {  # HOSTS mpirun-args...
  local hosts; hosts=$(nodes_hosts "$1"); shift
  timeout -k 10 "${NODES_TIMEOUT:-120}" mpirun --mca plm_rsh_agent "$nodes_agent" --mca btl self,tcp \
    --mca btl_tcp_if_include "$nodes_net.0/24" --mca oob_tcp_if_include "$nodes_net.0/24" \
    --mca pml ob1 --mca mpi_yield_when_idle 1 --mca rtc_hwloc_vmhole none \
    --host "$hosts" "$@"
}
