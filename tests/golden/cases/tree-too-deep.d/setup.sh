# 17 nested directories: the 16th level is still read (l16/deep.yaml), the 17th is
# not (its manifest would add a file and an instance), with one error naming it.
set -e
dir=.
i=1
while [ $i -le 17 ]; do
        dir=$dir/l$i
        i=$((i + 1))
done
mkdir -p "$dir"
sed 's/^name: .*/name: deep-16/' top.yaml >"${dir%/l17}/deep.yaml"
sed 's/^name: .*/name: deep-17/' top.yaml >"$dir/too-deep.yaml"
