#!/bin/sh
# Regenerates the recorded ruleset outputs in this directory from the sources next to them, in a
# throwaway network namespace (needs root, nftables, iptables, iproute2). Run from this directory.
set -eu
NS="fwcapture$$"
ip netns add "$NS"
trap 'ip netns del "$NS"' EXIT
N="ip netns exec $NS"
$N nft -j list ruleset > empty.nft.json
for source in accept_all inet_drop_ssh ip_only_drop two_chains rich gotos; do
  $N nft flush ruleset
  $N nft -f "$source.nft"
  $N nft -j list ruleset > "$source.nft.json"
done
$N nft flush ruleset
$N iptables -P INPUT DROP
$N iptables -A INPUT -p tcp --dport 22 -j ACCEPT
$N ip6tables -P INPUT DROP
$N ip6tables -A INPUT -p tcp --dport 22 -j ACCEPT
$N nft -j list ruleset > iptables_nft_ssh.nft.json
$N iptables-save > iptables_nft_ssh.iptables-save
$N ip6tables-save > iptables_nft_ssh.ip6tables-save
$N nft flush ruleset
$N iptables-restore < iptables_nft_rich.rules
$N iptables-save > iptables_nft_rich.iptables-save
$N nft -j list ruleset > iptables_nft_rich.nft.json
$N nft flush ruleset
$N iptables-legacy -P INPUT DROP
$N iptables-legacy -A INPUT -p tcp --dport 22 -j ACCEPT
$N iptables-legacy -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
$N iptables-legacy-save > legacy_ssh.iptables-legacy-save
$N ip6tables-legacy-save > legacy_ssh.ip6tables-legacy-save
$N nft -j list ruleset > legacy_ssh.nft.json
# ufw 0.36 enabled with `allow 22/tcp`, its configuration relocated to a scratch root so the
# host's /etc/ufw is left alone.
$N nft flush ruleset
R=$(mktemp -d)
mkdir -p "$R/etc/default" "$R/lib" "$R/usr/share"
cp -a /etc/ufw "$R/etc/ufw"; cp /etc/default/ufw "$R/etc/default/"
cp -a /lib/ufw "$R/lib/ufw"; cp -a /usr/share/ufw "$R/usr/share/ufw"; ln -s /usr/sbin "$R/usr/sbin"
$N ufw --rootdir="$R" --datadir="$R" allow 22/tcp
$N ufw --rootdir="$R" --datadir="$R" --force enable
$N nft -j list ruleset > ufw_enabled.nft.json
$N iptables-nft-save > ufw_enabled.iptables-save
$N ip6tables-nft-save > ufw_enabled.ip6tables-save
rm -rf "$R"
