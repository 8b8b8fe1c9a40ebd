#!/bin/sh
# mk/template-unit.sh units/notebookd.service > notebookd@.service
#
# The template unit (one daemon per project or region: notebookd@NAME) is generated from
# units/notebookd.service at build time instead of being written by hand, so that its
# ~100 lines of sandbox, resources and restart policy stay one text: a line added to
# notebookd.service is in every instance too. Only what makes an instance its own is
# rewritten: its config file, state directory, credentials and journal field.
#
# Every required rewrite must apply: if notebookd.service changes so that one no longer
# matches, this fails (and so does the build) instead of producing a template whose
# instances would share a state directory or credentials.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 units/notebookd.service" >&2; exit 2; }
awk '
BEGIN { in_header = 1 }
# The source'"'"'s opening comment describes the plain unit; the template gets its own.
in_header && /^#/ { next }
in_header {
        in_header = 0
        print "# notebookd@NAME: one notebookd per ModelArts project or region on this host."
        print "# Generated from notebookd.service by mk/template-unit.sh (the same sandbox and"
        print "# policy); installed by `make install` and the Debian package, which replace @BINDIR@."
        print "# notebookd@NAME reads /etc/notebookd/NAME.yaml (set project_id, region or endpoint,"
        print "# and its own manifests: there), keeps its state in /var/lib/notebookd@NAME and takes"
        print "# its credentials from /etc/notebookd/credentials/NAME/. Local changes belong in a"
        print "# drop-in (`systemctl edit notebookd@NAME`, or `systemctl edit notebookd@` for all)."
}
/^Description=/ { sub(/$/, " (%i)"); n["Description"]++ }
# The instance name picks the config file; a missing one is a config error (exit 2,
# which RestartPreventExitStatus= keeps from looping).
/^ExecStart=[^ ]*\/notebookd / {
        sub(/\/notebookd /, "/notebookd --config /etc/notebookd/%i.yaml ")
        n["ExecStart"]++
}
# A sibling of the directory of notebookd.service (/var/lib/notebookd@NAME), not one
# inside it: with DynamicUser= systemd makes /var/lib/notebookd a symlink to
# private/notebookd, and an instance with StateDirectory=notebookd/%i then fails to start
# ("Failed to set up special execution directory in /var/lib: File exists", seen in the
# system test), as notebookd.service would after an instance; and a new dynamic UID of
# notebookd.service would chown the databases of the instances inside it too.
/^StateDirectory=notebookd$/ { $0 = "StateDirectory=notebookd@%i"; n["StateDirectory"]++ }
/^# Files and identity\./ { sub(/\/var\/lib\/notebookd/, "/var/lib/notebookd@%i") }
# Every credential path, the LoadCredential= lines and the comments naming them alike.
/\/etc\/notebookd\/credentials\// {
        if ($0 ~ /^LoadCredential=/) n["LoadCredential"]++
        gsub(/\/etc\/notebookd\/credentials\//, "/etc/notebookd/credentials/%i/")
}
/systemctl edit notebookd/ { gsub(/systemctl edit notebookd/, "systemctl edit notebookd@NAME") }
{ print }
# notebookd names itself SYSLOG_IDENTIFIER=notebookd in every entry it writes, so
# SyslogIdentifier= would not tell instances apart; journald adds this field to every
# entry of the unit (the daemon'"'"'s, its stderr'"'"'s and systemd'"'"'s about it).
/^StateDirectory=notebookd@%i$/ {
        print "# Which instance wrote an entry: journalctl NOTEBOOKD_INSTANCE=NAME (or -u notebookd@NAME)."
        print "LogExtraFields=NOTEBOOKD_INSTANCE=%i"
}
END {
        split("Description ExecStart StateDirectory LoadCredential", want, " ")
        for (i = 1; i in want; i++)
                if (!(want[i] in n)) {
                        printf "mk/template-unit.sh: %s: no %s= line to rewrite for the template\n", FILENAME, want[i] > "/dev/stderr"
                        bad = 1
                }
        exit bad
}
' "$1"
