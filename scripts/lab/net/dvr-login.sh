#!/bin/busybox sh
# Login program for the lab's telnet target (`busybox telnetd -l THIS`): behaves like the
# login of a cheap DVR. Prints "login: " / "Password: ", accepts exactly one pair
# (DVR_USER / DVR_PASS from telnetd's environment, default root/xmhdipc, the XiongMai
# default that Mirai tries) and prints "Login incorrect" otherwise, 3 tries per connection.
# After a successful login it runs a tiny emulated shell: `echo`, `uname`, `/bin/busybox APPLET`
# (answered "applet not found" like Mirai's check expects), `exit`; anything else is "not found".
# Nothing the client sends is ever evaluated. Every read has a timeout; at most 20 commands.
# shellcheck shell=dash disable=SC3045 # busybox ash: read -t exists
user_ok=${DVR_USER:-root}
pass_ok=${DVR_PASS:-xmhdipc}
host=${DVR_HOSTNAME:-dvr}

strip() { printf '%s' "$1" | tr -d '\r\000'; }

printf '\r\n'
tries=0
ok=0
while [ "$tries" -lt 3 ]; do
    tries=$((tries + 1))
    printf '%s login: ' "$host"
    read -r -t 60 u || exit 0
    printf 'Password: '
    stty -echo 2>/dev/null
    read -r -t 60 p || { stty echo 2>/dev/null; exit 0; }
    stty echo 2>/dev/null
    printf '\r\n'
    u=$(strip "$u")
    p=$(strip "$p")
    if [ "$u" = "$user_ok" ] && [ "$p" = "$pass_ok" ]; then
        ok=1
        break
    fi
    # real logins wait a little before answering a wrong password
    busybox usleep $((200000 + $$ % 5 * 50000))
    printf 'Login incorrect\r\n'
done
[ "$ok" = 1 ] || exit 1

printf '\r\n\r\nBusyBox v1.35.0 built-in shell (ash)\r\n\r\n'
n=0
while [ "$n" -lt 20 ]; do
    n=$((n + 1))
    printf '# '
    read -r -t 60 line || exit 0
    line=$(strip "$line")
    cmd=${line%% *}
    rest=${line#"$cmd"}
    rest=${rest# }
    case "$cmd" in
        "") ;;
        exit | logout) exit 0 ;;
        sh | shell | enable | system) ;;
        echo) printf '%s\r\n' "$rest" ;;
        uname) printf 'Linux %s 3.10.0 #1 SMP armv7l GNU/Linux\r\n' "$host" ;;
        /bin/busybox | busybox)
            applet=${rest%% *}
            printf '%s: applet not found\r\n' "$applet"
            ;;
        *) printf -- '-sh: %s: not found\r\n' "$cmd" ;;
    esac
done
exit 0
