# What check never reads: hidden files and directories (.git/ among them) and editor
# leftovers (*~, .#*, *.swp, *.tmp). Each one is a manifest that would be an error
# (invalid YAML, or a duplicate of good.yaml's name) if it were read. Made here
# because git cannot hold a .git/ and a global excludes file would drop the rest.
set -e
broken='name: [never-read'
duplicate=$(cat good.yaml)
mkdir -p .git/refs .hidden-dir/sub
printf '%s\n' "$broken" >.git/config.yaml
printf '%s\n' "$broken" >.git/refs/head.yaml
printf '%s\n' "$duplicate" >.hidden-dir/sub/copy.yaml
printf '%s\n' "$broken" >.hidden.yaml
printf '%s\n' "$duplicate" >good.yaml~
printf '%s\n' "$broken" >.#good.yaml
printf '%s\n' "$broken" >.good.yaml.swp
printf '%s\n' "$broken" >good.yaml.swp
printf '%s\n' "$duplicate" >good.yaml.tmp
printf '%s\n' "$broken" >new.yml.tmp
# A leftover's name never ends in .yaml, so the files above would be skipped anyway;
# what the rule really decides is whether a directory with such a name is entered.
for d in backup~ .#edit drafts.tmp recover.swp; do
        mkdir "$d"
        printf '%s\n' "$duplicate" >"$d/good.yaml"
done
# emacs lock files are dangling symlinks: an error if followed
ln -s 'root@host.1234:1700000000' .#lock.yaml
