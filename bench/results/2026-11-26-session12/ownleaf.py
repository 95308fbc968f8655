import sys,collections,re
# ownleaf.py FILE OWNER_SUBSTR: for samples whose nearest Gateway/Kestrel frame matches, the leaf functions
def stacks(f):
    cur=[]
    for l in open(f):
        l=l.rstrip('\n')
        if not l.strip():
            if cur: yield cur; cur=[]
            continue
        if l[0] not in ' \t': continue
        cur.append(l.strip().split(' ',1)[-1])
    if cur: yield cur
c=collections.Counter(); n=0; t=0
for s in stacks(sys.argv[1]):
    t+=1
    for x in s:
        if x.startswith('Gateway_Core_Gateway_') or 'Kestrel' in x:
            if sys.argv[2] in x: n+=1; c[s[0]]+=1
            break
print(f'{100*n/t:.2f}%')
def short(x): return re.sub(r'Microsoft_AspNetCore_Server_Kestrel_Core_Microsoft_AspNetCore_Server_Kestrel_Core_Internal_','K:',re.sub(r'S_P_CoreLib_System_','CL:',re.sub('Gateway_Core_Gateway_','G:',x)))[:150]
for k,v in c.most_common(int(sys.argv[3]) if len(sys.argv)>3 else 12): print(f'{100*v/t:6.2f}  {short(k)}')
