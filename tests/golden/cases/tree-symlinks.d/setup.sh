# Symlinks (git could hold some, not ones that lead out of a temporary copy):
#   inside the tree: followed, but a file or directory is read once, under its real
#   path (an alias of good.yaml or of sub/ adds no file and no duplicate name);
#   dangling or leading outside: an error each, and what is outside is never read.
set -e
ln -s good.yaml alias.yaml
ln -s sub sub-alias
ln -s ../sub/in-sub.yaml sub/again.yml
ln -s missing.yaml broken.yaml
# outside: a valid manifest and a directory of them next to the copy (run.sh removes
# the whole temporary directory), and a file of the host
cat >../outside.yaml <<'END'
name: outside
profile_id: Python3
flavor: modelarts.vm.cpu.2u
spec:
  storage:
    type: evs
END
mkdir -p ../outside-dir
cp ../outside.yaml ../outside-dir/outside.yaml
ln -s ../outside.yaml evil.yaml
ln -s /etc/passwd passwd.yml
ln -s ../outside-dir shared
# a symlink not named like a manifest, to a file, is not followed at all
ln -s /etc/passwd notes.txt
