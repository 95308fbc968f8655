import collections,os,re,sys
# the stack reader of session 12's stacks.py (everything before its command-line part)
exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), '../2026-11-26-session12/stacks.py')).read().split('file, mode')[0])
# kids2.py FILE PARENT: for samples with PARENT on the stack, the frame just below (toward leaf) the nearest PARENT
f,parent=sys.argv[1],sys.argv[2]
n=0;h=0;c=collections.Counter()
for s in stacks(f):
    n+=1
    for i,x in enumerate(s):
        if parent in x:
            h+=1; c[short(s[i-1])[:110] if i>0 else '(self)']+=1; break
print(f'{parent}: {100*h/n:.2f}%')
for k,v in c.most_common(int(sys.argv[3]) if len(sys.argv)>3 else 25): print(f'{100*v/n:6.2f} {k}')
