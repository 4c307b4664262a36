#!/bin/sh
# Written by forgelab for service mynet: this host has no systemd, so
# forgelab supervises it (restart policy always). Removed by forgelab destroy.
cd -- '/opt/mynet/100%' || exit 1
export GREETING='say "hi" 100% $HOME'
export RUST_LOG='debug'
while :; do
	echo "forgelab: starting mynet"
	runuser -u 'mynet' -- sh -c '/opt/mynet/bin/mynetd --peers 10.1.0.2,10.9.0.3 --log "$STATE_DIRECTORY/x" --rate 50% \ "quoted"'
	rc=$?
	echo "forgelab: mynet exited with status $rc"
	:
	sleep 1
done
